package bench

import (
	"reflect"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// TestExperimentPass feeds the pass a hand-made run: a restart with a share
// and a plain subscriber away across it, an expiring publisher, and an away
// session that never returns; every count is one the events imply.
func TestExperimentPass(t *testing.T) {
	sec := int64(time.Second)
	clean := false
	sc := &scenarios.Scenario{
		Publishers: []scenarios.Publisher{
			{ClientID: "brief", Count: 1, Topic: "t", Protocol: scenarios.Protocol5, MessageExpiry: scenarios.Duration(4 * time.Second)},
			{ClientID: "pub", Count: 1, Topic: "t", Protocol: scenarios.Protocol5},
		},
		Subscribers: []scenarios.Subscriber{
			{ClientID: "w-%d", Count: 2, Filter: "t", SharedGroup: "g", Protocol: scenarios.Protocol5, CleanSession: &clean},
			{ClientID: "audit", Count: 1, Filter: "t", Protocol: scenarios.Protocol5, CleanSession: &clean, SessionExpiry: scenarios.Duration(10 * time.Second)},
			{ClientID: "other", Count: 1, Filter: "elsewhere", Protocol: scenarios.Protocol5},
		},
	}
	var evs []Event
	ack := func(t int64, pub string, seq int64) {
		evs = append(evs, Event{T: t, Type: EvAck, Client: pub, Seq: seq})
	}
	recv := func(t int64, sub, pub string, seq int64) {
		evs = append(evs, Event{T: t, Type: EvRecv, Client: sub, Pub: pub, Seq: seq})
	}
	act := func(t int64, do, target, err string) {
		evs = append(evs, Event{T: t, Type: EvAction, Action: do, Target: target, Err: err})
	}
	ack(1*sec, "brief", 1)
	ack(2*sec, "brief", 2)
	ack(2*sec, "brief", 2) // a resend acknowledged twice counts once
	ack(3*sec, "pub", 1)
	recv(3*sec, "w-1", "pub", 1)
	recv(3*sec, "audit", "pub", 1)
	act(4*sec, "disconnect", "audit", "")
	act(4*sec, "disconnect", "w-1", "")
	ack(4*sec+1, "pub", 2) // before the stop: held for both
	act(5*sec, "stop", "", "")
	act(6*sec, "start", "", "")
	ack(7*sec, "pub", 3)                     // while away
	act(8*sec, "reconnect", "w-2", "failed") // a failed action is not a return
	act(9*sec, "reconnect", "w-1", "")
	act(9*sec+1, "reconnect", "audit", "")
	recv(9*sec+2, "w-1", "pub", 2)
	recv(9*sec+2, "w-1", "pub", 2) // a duplicate is one receipt
	recv(9*sec+3, "audit", "pub", 2)
	recv(9*sec+3, "audit", "pub", 3)
	ack(10*sec, "pub", 4)
	recv(10*sec+1, "w-2", "pub", 4)
	// Both passes, as the report reads a run: the actions first, then the messages.
	p := NewExperimentPass(sc, InstantsOf(&Run{Events: evs}))
	for i := range evs {
		p.Add(&evs[i])
	}
	x := p.Close()

	if len(x.Expiring) != 1 || x.Expiring[0] != (ExpiringAcks{Group: "brief", ExpiryNS: 4 * sec, Acked: 2, FirstAckT: sec, LastAckT: 2 * sec}) {
		t.Errorf("expiring %+v", x.Expiring)
	}
	// audit left at 4 s with a 10 s expiry: pub 2 and 3 and brief none
	// (acknowledged before it left) were held for it until 14 s; pub 4 too.
	if len(x.Away) != 1 || x.Away[0] != (AwaySession{Client: "audit", ExpiryNS: 10 * sec, DisconnectT: 4 * sec, ReconnectT: 9*sec + 1, HeldFor: 3, ReceivedLater: 2}) {
		t.Errorf("away %+v", x.Away)
	}
	r := x.Restart
	if r == nil || r.DownT != 5*sec || r.StartT != 6*sec || r.DownBy != "stop" || len(r.Entries) != 3 {
		t.Fatalf("restart %+v", r)
	}
	want := []RestartEntry{
		{Name: "$share/g/t", Shared: true, Members: []string{"w-1", "w-2"}, Before: 4, BeforeReceived: 1, BeforeSurvived: 1, BackT: 9 * sec, Away: 1, After: 1, AfterRecvd: 1},
		{Name: "audit", Members: []string{"audit"}, Before: 4, BeforeReceived: 1, BeforeSurvived: 1, BackT: 9*sec + 1, Away: 1, AwayReceived: 1, After: 1},
		{Name: "other", Members: []string{"other"}, BackT: -1},
	}
	for i, w := range want {
		if !reflect.DeepEqual(r.Entries[i], w) {
			t.Errorf("entry %d: got %+v, want %+v", i, r.Entries[i], w)
		}
	}
}

// TestExperimentPassEmpty: a run without a scenario or actions has nothing.
func TestExperimentPassEmpty(t *testing.T) {
	p := NewExperimentPass(nil, InstantsOf(&Run{}))
	p.Add(&Event{T: 1, Type: EvAck, Client: "pub", Seq: 1})
	if x := p.Close(); x.Expiring != nil || x.Away != nil || x.Restart != nil {
		t.Errorf("got %+v", x)
	}
}
