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

// damagedFixture is the good fixture with the store id of its first delivery
// bent to point at nothing and an unknown chunk appended: a file Mosquitto
// loads while dropping both. It returns the path and the two offsets.
func damagedFixture(t *testing.T) (path string, danglingAt, unknownAt int64) {
	t.Helper()
	good, _ := inspectFixture(t)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	clean, err := persist.ParseChecked(data)
	if err != nil {
		t.Fatal(err)
	}
	danglingAt = clean.Offsets.ClientMsgs[0]
	data[danglingAt+persist.ChunkHeaderSize+7] ^= 0x80
	unknownAt = int64(len(data))
	data = append(data, 0, 0, 0, 42, 0, 0, 0, 2, 'h', 'i')
	path = filepath.Join(t.TempDir(), "damaged.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, danglingAt, unknownAt
}

// TestInspectDamaged: a file that loads with problems is shown as loaded, with
// every problem and its offset, in the tables and in --json, and the command
// succeeds; a clean file says it has none.
func TestInspectDamaged(t *testing.T) {
	path, danglingAt, unknownAt := damagedFixture(t)
	before, _ := os.ReadFile(path)
	out, err := runInspect(t, path)
	if err != nil {
		t.Fatalf("inspect of a loadable damaged file failed: %v", err)
	}
	for _, w := range []string{"Problems (2)", "slowsub", "refers to no earlier MSG_STORE; dropped", "unknown chunk (2 bytes); skipped"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	rows := map[int64]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.FieldsFunc(line, func(r rune) bool { return r == '│' || r == ' ' })
		for _, off := range []int64{danglingAt, unknownAt} {
			if len(f) > 2 && f[0] == inspectInt(off) {
				rows[off] = strings.Join(f[1:3], " ")
			}
		}
	}
	if rows[danglingAt] != "CLIENT_MSG yes" || !strings.HasPrefix(rows[unknownAt], "unknown type") {
		t.Errorf("problem rows %v:\n%s", rows, out)
	}

	if err := inspectCmd.Flags().Set("json", "true"); err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	rootCmd.SetOut(&js)
	rootCmd.SetArgs([]string{"inspect", "--json", path})
	err = rootCmd.Execute()
	rootCmd.SetArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		persist.Stats
		Problems []persist.Problem `json:"problems"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, js.String())
	}
	if got.Held != 1 || len(got.Problems) != 2 || got.Problems[0].Offset != danglingAt || !got.Problems[0].Dropped ||
		got.Problems[1].Offset != unknownAt || got.Problems[1].Chunk != "unknown type 42" {
		t.Fatalf("json %+v", got)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("inspect changed the file")
	}

	good, _ := inspectFixture(t)
	out, err = runInspect(t, good)
	if err != nil || !strings.Contains(out, "no problems") {
		t.Fatalf("clean file: %v\n%s", err, out)
	}
}

// TestInspectMQTT5: a file holding MQTT 5 state says so: messages with
// properties and an expiry, sessions that expire, subscription identifiers.
func TestInspectMQTT5(t *testing.T) {
	// Message expiry interval 60 (property 2), as a varint-length block.
	props := []byte{5, 2, 0, 0, 0, 60}
	db := &persist.DB{
		LastDBID: 1,
		Clients:  []persist.Client{{ClientID: "v5sub", SessionExpiryInterval: 300}},
		Subs:     []persist.Sub{{ClientID: "v5sub", Topic: "t", QoS: 1, Identifier: 7, Options: 0x04}},
		Stores:   []persist.MsgStore{{StoreID: 1, SourceID: "p", Topic: "t", QoS: 1, Payload: []byte("x"), ExpiryTime: 4102444800, Properties: props}},
		ClientMsgs: []persist.ClientMsg{
			{ClientID: "v5sub", StoreID: 1, Mid: 1, QoS: 1, State: persist.StateQueued, Direction: persist.DirOut},
		},
	}
	path := filepath.Join(t.TempDir(), "v5.db")
	if err := persist.WriteFile(path, db); err != nil {
		t.Fatal(err)
	}
	out, err := runInspect(t, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MQTT 5: messages with properties", "1 (earliest 2100-01-01T00:00:00Z)", "MQTT 5: sessions that expire", "1 / 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
}
