package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/broker/persist"
)

// runInspect runs `mqbench inspect` through the real command tree.
func runInspect(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if err := inspectCmd.Flags().Set("json", "false"); err != nil { // flags persist between Execute calls
		t.Fatal(err)
	}
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&out)
	rootCmd.SetArgs(append([]string{"inspect"}, args...))
	defer rootCmd.SetArgs(nil)
	err := rootCmd.Execute()
	return out.String(), err
}

func inspectFixture(t *testing.T) (good, corrupt string) {
	t.Helper()
	db := &persist.DB{
		LastDBID: 3,
		Clients:  []persist.Client{{ClientID: "slowsub", SessionExpiryInterval: 0xFFFFFFFF}},
		Subs:     []persist.Sub{{ClientID: "slowsub", Topic: "test", QoS: 2}},
		Stores: []persist.MsgStore{
			{StoreID: 3, SourceID: "pub", Topic: "test", QoS: 2, Payload: []byte("three")},
			{StoreID: 2, SourceID: "pub", Topic: "test", QoS: 2, Payload: []byte("two")},
			{StoreID: 1, SourceID: "pub", Topic: "test", QoS: 2, Payload: []byte("one")},
		},
		ClientMsgs: []persist.ClientMsg{
			{ClientID: "slowsub", StoreID: 1, Mid: 1, QoS: 2, State: persist.StateWaitForPubrec, Direction: persist.DirOut},
			{ClientID: "slowsub", StoreID: 2, Mid: 2, QoS: 2, State: persist.StateQueued, Direction: persist.DirOut},
		},
	}
	dir := t.TempDir()
	good = filepath.Join(dir, "mosquitto.db")
	if err := persist.WriteFile(good, db); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	corrupt = filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, data[:60], 0o600); err != nil {
		t.Fatal(err)
	}
	return good, corrupt
}

func TestInspect(t *testing.T) {
	good, corrupt := inspectFixture(t)
	tests := []struct {
		name     string
		args     []string
		wantOut  []string
		wantErr  string
		checkRaw func(t *testing.T, out string)
	}{
		{
			name:    "tables",
			args:    []string{good},
			wantOut: []string{"format version", "MSG_STORE", "slowsub", "unreferenced stores", "payload bytes"},
			checkRaw: func(t *testing.T, out string) {
				// slowsub row: session yes, 1 sub, 1 queued, 1 in flight.
				for _, line := range strings.Split(out, "\n") {
					if strings.Contains(line, "slowsub") {
						f := strings.FieldsFunc(line, func(r rune) bool { return r == '│' || r == ' ' })
						if strings.Join(f, " ") != "slowsub yes 1 1 1 0 0" {
							t.Fatalf("client row %q", line)
						}
						return
					}
				}
				t.Fatal("no slowsub row")
			},
		},
		{
			name: "json",
			args: []string{"--json", good},
			checkRaw: func(t *testing.T, out string) {
				var st persist.Stats
				if err := json.Unmarshal([]byte(out), &st); err != nil {
					t.Fatalf("%v in %s", err, out)
				}
				want := persist.ChunkCounts{CFG: 1, MsgStore: 3, ClientMsg: 2, Sub: 1, Client: 1}
				if st.Version != 6 || st.Chunks != want || st.Held != 2 || st.Queued != 1 || st.Inflight != 1 ||
					st.Unreferenced != 1 || st.PayloadBytes != 11 {
					t.Fatalf("stats %+v", st)
				}
			},
		},
		{
			name:    "corrupt file",
			args:    []string{corrupt},
			wantErr: "reading " + corrupt + ": truncated MSG_STORE chunk (length 44, 5 bytes left) at offset 47",
		},
		{name: "no argument", args: nil, wantErr: "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []byte
			if len(tt.args) > 0 {
				before, _ = os.ReadFile(tt.args[len(tt.args)-1])
			}
			out, err := runInspect(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr && !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if len(tt.args) > 0 {
					after, _ := os.ReadFile(tt.args[len(tt.args)-1])
					if !bytes.Equal(before, after) {
						t.Fatal("inspect changed the file")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tt.checkRaw != nil {
				tt.checkRaw(t, out)
			}
		})
	}
}
