package conf

// Tests of whole files: include_dir, writing and re-reading a config, and
// where every setting says it came from (file and line, for fail-closed errors).

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestIncludeDir(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(inc, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(inc, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.conf", "max_queued_messages 200\n")
	write("a.conf", "max_queued_messages 100\ninclude_dir /nonexistent\n")
	write("c.txt", "not a config at all\n")
	main := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(main, []byte("persistence true\ninclude_dir conf.d\nsys_interval 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ParseFile(main)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range c.Lines {
		keys = append(keys, s.Key+"@"+filepath.Base(s.File))
	}
	want := []string{"persistence@mosquitto.conf", "max_queued_messages@a.conf", "max_queued_messages@b.conf", "sys_interval@mosquitto.conf"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("lines = %v, want %v", keys, want)
	}
	if c.MaxQueuedMessages != 200 {
		t.Errorf("max_queued_messages = %d, want 200 (b.conf after a.conf)", c.MaxQueuedMessages)
	}
	if len(c.IncludeDirs) != 1 || c.IncludeDirs[0] != inc {
		t.Errorf("IncludeDirs = %v", c.IncludeDirs)
	}
	if len(c.Unacted) != 1 || c.Unacted[0].Key != "include_dir" {
		t.Errorf("nested include_dir should be skipped and reported unacted: %v", c.Unacted)
	}

	// An error inside an included file names that file and line.
	write("d.conf", "# x\nmax_queued_messages many\n")
	_, err = ParseFile(main)
	wantErr := filepath.Join(inc, "d.conf") + `:2: invalid value "many" for max_queued_messages: not an integer`
	if err == nil || err.Error() != wantErr {
		t.Errorf("err = %v, want %s", err, wantErr)
	}

	// A missing directory is an error at the include_dir line.
	if err := os.WriteFile(main, []byte("include_dir missing.d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ParseFile(main)
	if err == nil || !strings.HasPrefix(err.Error(), main+`:1: invalid value "missing.d" for include_dir`) {
		t.Errorf("err = %v", err)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(filepath.Join(t.TempDir(), "nope.conf"))
	if err == nil || !strings.Contains(err.Error(), "nope.conf") {
		t.Fatalf("err = %v, want it to name the file", err)
	}
}

func TestRoundTrip(t *testing.T) {
	text := `# a comment that is dropped
persistence true
persistence_location /tmp/x/
autosave_interval 0.5
max_queued_messages 5000
listener 1884 127.0.0.1
max_connections 10
allow_anonymous true
log_dest file /tmp/x/broker.log
log_type all
store_clean_interval 10
connection b
address 127.0.0.1:1999
topic # out 2
`
	c1, err := Parse(strings.NewReader(text), "r.conf")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c1.Write(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, Header+"\n") {
		t.Errorf("output does not start with the header:\n%s", out)
	}
	if !strings.Contains(out, "# store_clean_interval 10") {
		t.Errorf("store_clean_interval should be written commented (mosquitto 2.0 rejects it):\n%s", out)
	}
	c2, err := Parse(strings.NewReader(out), "written.conf")
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	// Everything but the line positions, the commented store_clean_interval and
	// the internal parse state must survive.
	strip := func(c *Config) *Config {
		cc := *c
		cc.Lines, cc.Unacted, cc.seen, cc.unacted, cc.Bridges = nil, nil, nil, nil, nil
		cc.StoreCleanInterval = 0
		cc.Security.Places = nil
		cc.Listeners = append([]Listener(nil), c.Listeners...)
		for i := range cc.Listeners {
			cc.Listeners[i].Line, cc.Listeners[i].Places, cc.Listeners[i].Security.Places = Setting{}, nil, nil
		}
		return &cc
	}
	if !reflect.DeepEqual(strip(c1), strip(c2)) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", strip(c1), strip(c2))
	}
	if !reflect.DeepEqual(c1.Strings()[:9], c2.Strings()[:9]) {
		t.Errorf("lines changed:\n%q\n%q", c1.Strings(), c2.Strings())
	}
	if len(c2.Bridges) != 1 || len(c2.Bridges[0].Settings) != 2 {
		t.Errorf("bridge lost: %+v", c2.Bridges)
	}
}

func TestWriteRejectsLineBreak(t *testing.T) {
	c := Default()
	if err := c.Apply("persistence_file", "a\nlistener 1 0.0.0.0", "s.yaml", 4); err != nil {
		t.Fatal(err)
	}
	err := c.Write(&bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "s.yaml:4") {
		t.Fatalf("err = %v, want a line-break error naming s.yaml:4", err)
	}
}

func TestFromSettings(t *testing.T) {
	c, err := FromSettings([]Setting{
		{Key: "persistence", Value: "true", File: "persist-3s.yaml", Line: 5},
		{Key: "autosave_interval", Value: "3", File: "persist-3s.yaml", Line: 6},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Persistence || c.AutosaveInterval != 3*time.Second || len(c.Lines) != 2 {
		t.Errorf("got %+v", c)
	}
	_, err = FromSettings([]Setting{{Key: "autosave_intervall", Value: "3", File: "persist-3s.yaml", Line: 6}})
	want := `persist-3s.yaml:6: unknown configuration variable "autosave_intervall"`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestZeroConfigApply(t *testing.T) {
	// Apply on a zero Config (not from Default) must not panic on scoped keys.
	var c Config
	for _, kv := range [][2]string{{"max_connections", "3"}, {"listener", "1884"}, {"max_connections", "4"}} {
		if err := c.Apply(kv[0], kv[1], "z", 1); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.Listeners) != 2 || c.Listeners[0].MaxConnections != 3 || c.Listeners[1].MaxConnections != 4 {
		t.Errorf("listeners = %+v", c.Listeners)
	}
}

func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("persistence true\nautosave_interval 3\nlistener 1884 127.0.0.1\nmax_connections 10\n")
	for k := 0; k < 50; k++ {
		sb.WriteString("# comment line\nmax_queued_messages 1000\nlog_type all\nsys_interval 10\n")
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := Parse(strings.NewReader(text), "bench.conf"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTabsAndSpaces(t *testing.T) {
	tests := []struct {
		line, key, value string
	}{
		{"persistence_file\tmy db.db", "persistence_file", "my db.db"},
		{"  persistence_location   /a b/  ", "persistence_location", "/a b/"},
		{"max_queued_messages\t\t42\r", "max_queued_messages", "42"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.line+"\n"), "t.conf")
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Lines) != 1 || c.Lines[0].Key != tt.key || c.Lines[0].Value != tt.value {
				t.Errorf("lines = %+v, want %s=%q", c.Lines, tt.key, tt.value)
			}
		})
	}
}

func TestSettingPlace(t *testing.T) {
	tests := []struct {
		s         Setting
		want      string
		wantError string
	}{
		{Setting{File: "a.conf", Line: 3}, "a.conf:3", "a.conf:3: boom"},
		{Setting{File: "scenario.yaml"}, "scenario.yaml", "scenario.yaml: boom"},
		{Setting{Line: 7}, "line 7", "line 7: boom"},
		{Setting{}, "", "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.s.Place(); got != tt.want {
				t.Errorf("Place() = %q, want %q", got, tt.want)
			}
			e := &Error{File: tt.s.File, Line: tt.s.Line, Msg: "boom"}
			if got := e.Error(); got != tt.wantError {
				t.Errorf("Error() = %q, want %q", got, tt.wantError)
			}
		})
	}
}

// TestListenerPlaces: every listener and security option remembers where it was
// set, so the broker can refuse what it cannot honour naming file and line.
func TestListenerPlaces(t *testing.T) {
	text := "per_listener_settings true\nlistener 8883 127.0.0.1\ncertfile /s.crt\nkeyfile /s.key\n" +
		"password_file /pw\nallow_anonymous false\nlistener 1883 127.0.0.1\nprotocol websockets\nacl_file /acl\n"
	c, err := Parse(strings.NewReader(text), "p.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 2 {
		t.Fatalf("listeners = %d", len(c.Listeners))
	}
	tls, ws := &c.Listeners[0], &c.Listeners[1]
	for _, tc := range []struct{ got, want string }{
		{tls.Place("listener"), "p.conf:2"},
		{tls.Place("certfile"), "p.conf:3"},
		{tls.Place("keyfile"), "p.conf:4"},
		{tls.Security.Places["password_file"].Place(), "p.conf:5"},
		{tls.Security.PasswordFile, "/pw"},
		{ws.Protocol, "websockets"},
		{ws.Security.ACLFile, "/acl"},
		{ws.Security.PasswordFile, ""},
		{c.Security.PasswordFile, ""},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if c.AnonymousFor(tls) || c.AnonymousFor(ws) {
		t.Errorf("anonymous: tls %v ws %v, want false for both (explicit false, and the default once a listener exists)", c.AnonymousFor(tls), c.AnonymousFor(ws))
	}
}

// TestPerListenerSettingsOrder: Mosquitto refuses per_listener_settings after
// another security setting, because the earlier one would silently change scope.
func TestPerListenerSettingsOrder(t *testing.T) {
	_, err := Parse(strings.NewReader("allow_anonymous true\nper_listener_settings true\n"), "o.conf")
	if err == nil || !strings.Contains(err.Error(), "o.conf:2") {
		t.Fatalf("err = %v, want a refusal at o.conf:2", err)
	}
	if _, err := Parse(strings.NewReader("password_file /a\npassword_file /b\n"), "d.conf"); err == nil || !strings.Contains(err.Error(), "d.conf:2") {
		t.Fatalf("duplicate password_file: err = %v, want a refusal at d.conf:2", err)
	}
}
