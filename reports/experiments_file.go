package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/broker/persist"
)

// What the broker's last file says about shared subscriptions. A broker
// mqbench started keeps its data directory in the run directory (broker/),
// so the file of its final save is there to read: whether it holds a SUB
// record for a share whose members' sessions it saved is the direct answer
// to "are shared subscriptions persisted?", beside what the restart showed.

// lastFile is the broker's last persistence file in the run directory, if
// the run was launched by mqbench and the file is still there.
func lastFile(run *bench.Run) (string, bool) {
	if run.Header.PersistPath == "" || run.Dir == "" {
		return "", false
	}
	p := filepath.Join(run.Dir, "broker", filepath.Base(run.Header.PersistPath))
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		return "", false
	}
	return p, true
}

// savedSharesFinding says which subscriptions the last file holds and
// whether the shares of the run are among them; "" without a share or a
// readable file.
func savedSharesFinding(run *bench.Run, r *bench.RestartSplit) string {
	if r == nil {
		return ""
	}
	var shares []bench.RestartEntry
	for _, e := range r.Entries {
		if e.Shared {
			shares = append(shares, e)
		}
	}
	path, ok := lastFile(run)
	if len(shares) == 0 || !ok {
		return ""
	}
	db, err := persist.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("The broker's last file (%s) could not be read (%v): which subscriptions it saved is unknown.", filepath.Join("broker", filepath.Base(path)), err)
	}
	sessions := map[string]bool{}
	var ids []string
	for _, c := range db.Clients {
		sessions[c.ClientID] = true
		ids = append(ids, c.ClientID)
	}
	sort.Strings(ids)
	var subs []string
	saved := map[string]bool{}
	for _, s := range db.Subs {
		subs = append(subs, s.ClientID+": "+s.Topic)
		saved[s.Topic] = true
	}
	sort.Strings(subs)
	msg := fmt.Sprintf("The broker's last file (broker/%s, %s) holds %s %s (%s) and %s %s (%s).",
		filepath.Base(path), formatBytes(fileSize(path)), groupInt(int64(len(ids))), plural(int64(len(ids)), "session", "sessions"), listOrNone(ids),
		groupInt(int64(len(subs))), plural(int64(len(subs)), "subscription", "subscriptions"), listOrNone(subs))
	for _, sh := range shares {
		var kept []string
		for _, m := range sh.Members {
			if sessions[m] {
				kept = append(kept, m)
			}
		}
		switch {
		case saved[sh.Name]:
			msg += fmt.Sprintf(" It saved %s.", sh.Name)
		case len(kept) > 0:
			msg += fmt.Sprintf(" It saved the %s of %s, members of %s, but not that subscription: the broker did not save the shared subscription.",
				plural(int64(len(kept)), "session", "sessions"), strings.Join(kept, " and "), sh.Name)
		default:
			msg += fmt.Sprintf(" It holds neither %s nor its members' sessions.", sh.Name)
		}
	}
	return msg
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}
