package broker

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/mqbench/mqbench/broker/conf"
)

// Configuration reload: Mosquitto 2.0.11's SIGHUP (the flag_reload branch of
// its main loop). Mosquitto re-reads the configuration file, copies a fixed
// set of settings from it (config__copy), re-reads the password and ACL files,
// and re-checks every connected client (mosquitto_security_apply_default): one
// without a username where anonymous access is now refused, or whose username
// and password no longer pass, is disconnected, not authorised, without its
// will; the others are held to the new ACLs from their next message on.
// Listeners are not reloaded. A configuration file that cannot be read leaves
// the old settings in place, and the password and ACL files are re-read all the
// same.
//
// One difference, on purpose: when a password or ACL file cannot be read,
// Mosquitto 2.0.11 goes on with no password check and no ACL at all (measured:
// a topic the old ACL denied is delivered after such a reload), which is the
// security hole this project's fail-closed rule forbids. The bundled broker
// keeps the previous security settings instead, and logs the error with the
// file and line.

// reloadReq is one reload for the state owner: read gives the configuration
// read again (nil, nil: keep it and re-read the password and ACL files), or
// why it could not be read.
type reloadReq struct {
	read  func() (*conf.Config, error)
	reply chan error
}

// Reload applies a configuration read again from the file by read, as SIGHUP
// does to Mosquitto. A read error is logged, and the password and ACL files
// of the settings in force are re-read. The returned error says what was not
// applied (it is logged too); the broker keeps running either way.
//
// Mosquitto notices the signal before it reads the next packet; so that a
// client which connects right after the signal meets the new settings here
// too, the state owner handles nothing more from clients from the moment
// Reload is called until the reload is applied, and read runs there.
func (b *Broker) Reload(read func() (*conf.Config, error)) error {
	if !b.isRunning() {
		return errors.New("reload: broker not running")
	}
	r := reloadReq{read: read, reply: make(chan error, 1)}
	b.reloadPending.Add(1) // the state owner takes it off when it takes r
	select {
	case b.reloadReq <- r:
	case <-b.loopDone:
		return errors.New("reload: broker stopped")
	}
	select {
	case err := <-r.reply:
		return err
	case <-b.loopDone:
		return errors.New("reload: broker stopped")
	}
}

// reloadedByMosquitto are the settings config__copy takes from a reloaded
// file that the bundled broker fixes at start (its logger, autosave timer,
// $SYS ticker, readers and persistence file): a change to one is logged as
// needing a restart rather than half applied.
var reloadedByMosquitto = []struct {
	key string
	get func(*conf.Config) any
}{
	{"autosave_interval", func(c *conf.Config) any { return c.AutosaveInterval }},
	{"autosave_on_changes", func(c *conf.Config) any { return c.AutosaveOnChanges }},
	{"connection_messages", func(c *conf.Config) any { return c.ConnectionMessages }},
	{"log_dest", func(c *conf.Config) any { return c.LogDest }},
	{"log_type", func(c *conf.Config) any { return c.LogType }},
	{"log_timestamp", func(c *conf.Config) any { return c.LogTimestamp }},
	{"message_size_limit", func(c *conf.Config) any { return c.MessageSizeLimit }},
	{"persistence", func(c *conf.Config) any { return c.Persistence }},
	{"persistence_file", func(c *conf.Config) any { return c.PersistenceFile }},
	{"persistence_location", func(c *conf.Config) any { return c.PersistenceLocation }},
	{"sys_interval", func(c *conf.Config) any { return c.SysInterval }},
}

// takeReload applies a reload whose Reload call is under way before the
// state owner handles the next client event.
func (st *state) takeReload() {
	for st.b.reloadPending.Load() > 0 {
		select {
		case r := <-st.b.reloadReq:
			r.reply <- st.reload(r)
		case <-st.b.abortReq:
			return // closed: the loop's own select sees it next
		}
	}
}

// reload runs in the state owner.
func (st *state) reload(r reloadReq) error {
	b := st.b
	b.reloadPending.Add(-1)
	b.log.printf(logInfo, "Reloading config.")
	next, readErr := r.read()
	var problems []error
	fail := func(err error) {
		b.log.printf(logError, "Error: %v", err)
		problems = append(problems, err)
	}
	if readErr != nil {
		fail(fmt.Errorf("%v (the previous configuration stays in force)", readErr))
		next = nil
	} else if next == nil {
		next = b.reloadBase
	} else if err := checkHonoured(next); err != nil {
		fail(fmt.Errorf("%v (the previous configuration stays in force)", err))
		next = nil
	} else if next.PerListenerSettings && len(next.Listeners) != len(b.cfg.Listeners) {
		fail(fmt.Errorf("%s: listeners changed: listeners are not reloaded, restart the broker (the previous configuration stays in force)", placeOfFile(next)))
		next = nil
	}
	secCfg := next
	if secCfg == nil {
		secCfg = b.reloadBase // re-read the files the settings in force name
	}
	global, perListener, err := loadAllSecurity(secCfg)
	if err != nil {
		fail(fmt.Errorf("%v (the previous password and ACL settings stay in force)", err))
		return errors.Join(problems...)
	}
	if next != nil {
		for _, k := range reloadedByMosquitto {
			if !reflect.DeepEqual(k.get(next), k.get(b.cfg)) {
				b.log.printf(logWarning, "Warning: %s: %s changed; the bundled broker applies it only at start: restart it.", placeOfKey(next, k.key), k.key)
			}
		}
		c := b.cfg
		c.Security = next.Security
		c.ClientIDPrefixes = next.ClientIDPrefixes
		c.PersistentClientExpiration = next.PersistentClientExpiration
		c.QueueQoS0Messages = next.QueueQoS0Messages
		c.UpgradeOutgoingQoS = next.UpgradeOutgoingQoS
		st.upgradeQoS = next.UpgradeOutgoingQoS
		b.reloadBase = next
	}
	b.secLocal = global
	for i := range b.sec {
		b.sec[i] = global
		if perListener != nil {
			b.sec[i] = perListener[i]
		}
	}
	for _, l := range b.listeners {
		l.sec = b.secLocal
		if l.cfg != nil {
			l.sec = b.sec[l.index]
		}
	}
	st.applySecurity()
	return errors.Join(problems...)
}

// loadAllSecurity reads the password and ACL files of every set of security
// options cfg has: the broker's, and each listener's with
// per_listener_settings.
func loadAllSecurity(cfg *conf.Config) (*security, []*security, error) {
	global, err := loadSecurity(cfg, nil)
	if err != nil {
		return nil, nil, err
	}
	if !cfg.PerListenerSettings {
		return global, nil, nil
	}
	per := make([]*security, len(cfg.Listeners))
	for i := range cfg.Listeners {
		if per[i], err = loadSecurity(cfg, &cfg.Listeners[i]); err != nil {
			return nil, nil, err
		}
	}
	return global, per, nil
}

// applySecurity is mosquitto_security_apply_default for the reloaded options:
// every session is held to its listener's new options, and a connected
// client they no longer let in is disconnected, not authorised, without its
// will.
func (st *state) applySecurity() {
	for _, s := range st.sortedSessions(false) {
		c := s.conn
		if s.sec != nil && s.sec.trusted {
			continue // a bridge's local client (bridge.go)
		}
		if c == nil {
			s.sec = st.b.securityForPort(int(s.listenerPort))
			continue
		}
		sec := c.lis.sec
		s.sec = sec
		ok := sec.anonymous || s.hasUser
		if ok && !c.certAuth() {
			ok = sec.passwords.Check(c.loginUser, c.loginPass).Allowed(sec.anonymous)
		}
		if !ok {
			st.b.log.printf(logNotice, "Client %s disconnected, not authorised.", s.id)
			st.disconnect(c, false)
		}
	}
}

func placeOfFile(c *conf.Config) string {
	for _, s := range c.Lines {
		if s.File != "" {
			return s.File
		}
	}
	return "config"
}

func placeOfKey(c *conf.Config, key string) string {
	place := ""
	for _, s := range c.Lines {
		if s.Key == key {
			place = s.Place()
		}
	}
	if place == "" {
		return placeOfFile(c)
	}
	return place
}
