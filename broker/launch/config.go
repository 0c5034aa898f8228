package launch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/mqbench/mqbench/broker/conf"
)

// buildSettings makes the config the run needs around the scenario's settings.
// It reports whether launch picked the port (so a bind failure may be retried).
func (i *Instance) buildSettings(sc *conf.Config) ([]conf.Setting, bool, error) {
	add := func(key, value string) conf.Setting {
		return conf.Setting{Key: key, Value: value, File: launchFile}
	}
	var out []conf.Setting
	picked := false
	settings := append([]conf.Setting(nil), i.opts.Settings...)

	// Listener options alone (max_connections...) make conf create Mosquitto's
	// default listener; they are meant for the run's listener, which comes first.
	explicit := hasKey(settings, "listener") || hasKey(settings, "port") || hasKey(settings, "bind_address")
	if explicit && i.secure != nil {
		s := findSetting(settings, "listener")
		return nil, false, fmt.Errorf("broker setting %s (%s): a secured run's listener is the one mqbench makes; drop the listener lines or the security section", s, where(s))
	}
	if !explicit {
		port, err := freePort("127.0.0.1")
		if err != nil {
			return nil, false, err
		}
		picked = true
		// First, so listener options in the scenario (max_connections...) apply to it.
		out = append(out, add("listener", fmt.Sprintf("%d 127.0.0.1", port)))
		if i.secure != nil {
			out = append(out, i.secure.settings...)
		}
		i.addr = fmt.Sprintf("%s127.0.0.1:%d", i.scheme(), port)
	} else {
		i.addr = ""
		for _, l := range sc.Listeners {
			if err := checkLoopback(l, settings); err != nil {
				return nil, false, err
			}
		}
		// Rewrite `listener 0 ADDR` (mqbench: any free port) to a real port.
		for k, s := range settings {
			if s.Key != "listener" {
				continue
			}
			f := strings.Fields(s.Value)
			host := "127.0.0.1"
			if len(f) > 1 && !strings.HasPrefix(f[1], "#") {
				host = f[1]
			}
			if f[0] == "0" {
				port, err := freePort(host)
				if err != nil {
					return nil, false, err
				}
				picked = true
				f[0] = strconv.Itoa(port)
				settings[k].Value = strings.Join(f, " ")
			}
			if i.addr == "" {
				if host == "localhost" {
					host = "127.0.0.1"
				}
				i.addr = "tcp://" + net.JoinHostPort(host, f[0])
			}
		}
		if i.addr == "" { // only port/bind_address lines
			l := sc.Listeners[0]
			host := l.BindAddress
			if host == "localhost" {
				host = "127.0.0.1"
			}
			i.addr = "tcp://" + net.JoinHostPort(host, strconv.Itoa(l.Port))
		}
	}
	out = append(out, settings...)
	if sc.Security.AllowAnonymous == nil && !sc.PerListenerSettings && i.secure == nil {
		out = append(out, add("allow_anonymous", "true"))
	}
	if sc.Persistence && sc.PersistenceLocation == "" {
		out = append(out, add("persistence_location", i.dataDir+"/"))
	}
	if !hasKey(settings, "log_dest") {
		out = append(out, add("log_dest", "file "+i.logPath))
	}
	if i.kind == KindMosquitto && os.Geteuid() == 0 && !hasKey(settings, "user") {
		// Mosquitto 2.0 started as root drops to user mosquitto, which cannot
		// write the data dir: stay root.
		out = append(out, add("user", "root"))
	}
	return out, picked, nil
}

// checkLoopback refuses a scenario listener that would be reachable from other
// hosts: benchmark brokers bind loopback only.
func checkLoopback(l conf.Listener, settings []conf.Setting) error {
	switch l.BindAddress {
	case "127.0.0.1", "::1", "localhost":
		return nil
	}
	key := "listener"
	if l.Default {
		key = "port/bind_address (or a listener option before any listener line)"
	}
	s := findListenerSetting(settings, l)
	addr := l.BindAddress
	if addr == "" {
		addr = "all interfaces"
	}
	return fmt.Errorf("broker setting %s (%s): binds %s; mqbench runs brokers on loopback only: use `listener PORT 127.0.0.1` (or ::1), or no listener at all", key, where(s), addr)
}

func findListenerSetting(settings []conf.Setting, l conf.Listener) conf.Setting {
	for _, s := range settings {
		if l.Default && (s.Key == "port" || s.Key == "bind_address") {
			return s
		}
		if !l.Default && s.Key == "listener" {
			f := strings.Fields(s.Value)
			if len(f) > 0 && f[0] == strconv.Itoa(l.Port) {
				return s
			}
		}
	}
	return conf.Setting{}
}

// where names the place of a scenario setting for an error ("scenario" when
// the setting carries none).
func where(s conf.Setting) string {
	if p := s.Place(); p != "" {
		return p
	}
	return "scenario"
}

func hasKey(settings []conf.Setting, key string) bool {
	return findSetting(settings, key).Key != ""
}

func findSetting(settings []conf.Setting, key string) conf.Setting {
	for _, s := range settings {
		if s.Key == key {
			return s
		}
	}
	return conf.Setting{}
}

// checkNotUserConf refuses to overwrite a mosquitto.conf that launch did not write.
func checkNotUserConf(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	defer f.Close()
	first, _ := bufio.NewReader(f).ReadString('\n')
	if strings.TrimSpace(first) != conf.Header {
		return fmt.Errorf("%s exists and was not written by mqbench: refusing to overwrite it (use a fresh data dir)", path)
	}
	return nil
}

func writeConf(path string, cfg *conf.Config) error {
	var buf bytes.Buffer
	if err := cfg.Write(&buf); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// freePort asks the kernel for a free port on host. It is released before the
// broker binds it, so a race is possible: startLocal retries on a bind failure.
func freePort(host string) (int, error) {
	if host == "localhost" {
		host = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("picking a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
