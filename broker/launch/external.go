package launch

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// startExternal describes a broker mqbench does not run. Nothing is applied to
// it; its version is read from $SYS if it answers quickly (without the run's
// credentials or TLS files, so a secured broker's version stays unknown).
func startExternal(ctx context.Context, o Options) (*Instance, error) {
	addr, err := externalAddrs(o.Kind, o.DBPath != "" || o.ConfFile != "")
	if err != nil {
		return nil, err
	}
	i := &Instance{kind: KindExternal, addr: addr, persistPath: o.DBPath, opts: o}
	if o.ConfFile != "" {
		// The broker's own configuration: what the report shows as its
		// settings, and where its persistence file is when --db is not given.
		cfg, err := conf.ParseFile(o.ConfFile)
		if err != nil {
			return nil, fmt.Errorf("external broker configuration: %w", err)
		}
		i.lines, i.confSource = cfg.Strings(), ConfigFromFile
		if i.persistPath == "" && cfg.Persistence {
			i.persistPath = cfg.PersistencePath()
			i.notices = append(i.notices, fmt.Sprintf("external broker %s: sampling its persistence file %s (from %s)", i.addr, i.persistPath, o.ConfFile))
		}
		if len(o.Settings) > 0 {
			i.notices = append(i.notices, fmt.Sprintf("external broker %s: the scenario's %d broker setting(s) are not applied; its own configuration is %s", i.addr, len(o.Settings), o.ConfFile))
		}
		i.version = sysVersion(ctx, i.addr, 2*time.Second)
		return i, nil
	}
	if len(o.Settings) > 0 {
		cfg, err := conf.FromSettings(o.Settings)
		if err != nil {
			return nil, fmt.Errorf("broker settings: %w", err)
		}
		i.lines = cfg.Strings()
		i.notices = append(i.notices, fmt.Sprintf("external broker %s: the scenario's %d broker setting(s) are not applied; configure the broker yourself", i.addr, len(i.lines)))
	}
	first, _, _ := strings.Cut(i.addr, ",")
	i.version = sysVersion(ctx, first, 2*time.Second)
	return i, nil
}

// externalSchemes are the broker address schemes mqbench's clients speak:
// MQTT over TCP, over TLS, and over websockets (plain or TLS).
var externalSchemes = map[string]bool{"tcp": true, "mqtt": true, "mqtts": true, "ssl": true, "ws": true, "wss": true}

// externalAddrs checks a cluster target, several addresses separated by
// commas (the nodes a run spreads its clients over, see bench's cluster.go),
// and returns them normalised and comma-joined; one address is returned as
// externalAddr returns it. A persistence file or mosquitto.conf belongs to one
// broker, so with several addresses they are refused (oneBroker).
func externalAddrs(kind string, oneBroker bool) (string, error) {
	parts := strings.Split(kind, ",")
	if len(parts) == 1 {
		return externalAddr(kind)
	}
	if oneBroker {
		return "", fmt.Errorf("broker addresses %q: --db and --conf describe one broker, not a cluster of %d", kind, len(parts))
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		a, err := externalAddr(strings.TrimSpace(p))
		if err != nil {
			return "", err
		}
		if seen[a] {
			return "", fmt.Errorf("broker addresses %q: %s is given twice", kind, a)
		}
		seen[a] = true
		out = append(out, a)
	}
	return strings.Join(out, ","), nil
}

// externalAddr checks an external broker address and returns it normalised
// (SCHEME://HOST:PORT, plus the path for websockets). Credentials in the
// address are refused: the address is recorded with the run, a password
// must not be.
func externalAddr(kind string) (string, error) {
	const want = "want tcp://HOST:PORT, mqtt://, mqtts://HOST:PORT or ws://, wss://HOST:PORT[/path]"
	u, err := url.Parse(kind)
	if err != nil {
		return "", fmt.Errorf("external broker address %q: %s", kind, want)
	}
	if u.User != nil {
		return "", fmt.Errorf("external broker address %s: credentials in the address are not supported: use -u/--username and -P/--password (or the scenario's connect section)", u.Redacted())
	}
	if !externalSchemes[u.Scheme] || u.Hostname() == "" || u.Port() == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("external broker address %q: %s", kind, want)
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("external broker address %q: port out of range 1..65535", kind)
	}
	path := u.EscapedPath()
	if path != "" && u.Scheme != "ws" && u.Scheme != "wss" {
		return "", fmt.Errorf("external broker address %q: only ws:// and wss:// addresses take a path", kind)
	}
	return u.Scheme + "://" + u.Host + path, nil
}
