package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/mqbench/mqbench/broker/persist"
)

// inspectCmd decodes a mosquitto.db (any broker's, formats 2-6) and shows what
// it holds, so a saved file can be checked for backlog, duplicates and
// orphans without starting a broker. It reads the file as Mosquitto 2.0.11
// (and the bundled broker) would load it: a file they refuse is an error with
// its offset (exit 1); a file they load while dropping or repairing things is
// shown as loaded plus a Problems table, each with its offset (exit 0: the
// file is usable, and the problems are data, not a failure of the command).
// It only reads the file.
var inspectCmd = &cobra.Command{
	Use:   "inspect DBFILE",
	Short: "Show what a mosquitto.db holds (chunks, held messages per client, duplicates) and what is wrong with it",
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		asJSON, err := cmd.Flags().GetBool("json")
		if err != nil {
			return err
		}
		path := args[0]
		chk, err := persist.ReadChecked(path)
		if err != nil {
			return err
		}
		st := chk.DB.Stats()
		out := cmd.OutOrStdout()
		if asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			problems := chk.Problems
			if problems == nil {
				problems = []persist.Problem{}
			}
			if err := enc.Encode(inspectJSON{Stats: st, Problems: problems}); err != nil {
				return fmt.Errorf("writing json: %w", err)
			}
			return nil
		}
		var size int64 = -1
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		if err := renderInspect(out, path, size, st); err != nil {
			return fmt.Errorf("rendering tables: %w", err)
		}
		if err := renderProblems(out, chk.Problems); err != nil {
			return fmt.Errorf("rendering tables: %w", err)
		}
		return nil
	},
}

// inspectJSON is `inspect --json`: the statistics as before (their names are
// stable) plus the problems, always present so scripts need no null check.
type inspectJSON struct {
	persist.Stats
	Problems []persist.Problem `json:"problems"`
}

// renderProblems prints the Problems table, or a line saying there are none,
// so a clean file is visibly checked rather than silently so.
func renderProblems(w io.Writer, problems []persist.Problem) error {
	if len(problems) == 0 {
		_, err := fmt.Fprintln(w, "no problems: Mosquitto 2.0.11 loads every chunk")
		return err
	}
	if _, err := fmt.Fprintf(w, "Problems (%d): what Mosquitto 2.0.11 and the bundled broker skip, drop or repair when they load this file\n", len(problems)); err != nil {
		return err
	}
	rows := make([][]string, 0, len(problems))
	for _, p := range problems {
		chunk, dropped := p.Chunk, "no"
		if chunk == "" {
			chunk = "-"
		}
		if p.Dropped {
			dropped = "yes"
		}
		rows = append(rows, []string{strconv.FormatInt(p.Offset, 10), chunk, dropped, p.What})
	}
	return renderInspectTable(w, []string{"offset", "chunk", "dropped", "what"}, rows)
}

func init() {
	inspectCmd.Flags().Bool("json", false, "print the statistics as JSON")
	rootCmd.AddCommand(inspectCmd)
}

func newInspectTable(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
	)
}

func renderInspectTable(w io.Writer, header []string, rows [][]string) error {
	t := newInspectTable(w)
	t.Header(header)
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			return err
		}
	}
	return t.Render()
}

func inspectInt(n int64) string { return strconv.FormatInt(n, 10) }

// renderInspect prints three tables: the file, its chunk counts (comparable
// with mosquitto_db_dump --stats), and what each client holds. They describe
// what loads: entries a loader drops are in the Problems table instead.
func renderInspect(w io.Writer, path string, size int64, st persist.Stats) error {
	sizeText := "?"
	if size >= 0 {
		sizeText = inspectInt(size)
	}
	file := [][]string{
		{"file", path},
		{"size bytes", sizeText},
		{"format version", strconv.FormatUint(uint64(st.Version), 10)},
		{"last db id", strconv.FormatUint(st.LastDBID, 10)},
		{"clean shutdown", strconv.FormatBool(st.Shutdown)},
		{"held (outgoing)", inspectInt(st.Held)},
		{"queued", inspectInt(st.Queued)},
		{"inflight", inspectInt(st.Inflight)},
		{"incoming unreleased", inspectInt(st.Incoming)},
		{"payload bytes", inspectInt(st.PayloadBytes)},
		{"unreferenced stores", inspectInt(st.Unreferenced)},
		{"duplicates", fmt.Sprintf("%d (%d ids, %d contents)", st.Duplicates, st.DuplicateIDs, st.DuplicateContent)},
		{"dangling references", inspectInt(st.Dangling)},
	}
	if m := st.MQTT5; m != (persist.MQTT5Stats{}) {
		earliest := "none"
		if m.EarliestExpiry != 0 {
			earliest = time.Unix(m.EarliestExpiry, 0).UTC().Format(time.RFC3339)
		}
		file = append(file,
			[]string{"MQTT 5: messages with properties", inspectInt(m.MessagesWithProperties)},
			[]string{"MQTT 5: messages with an expiry", fmt.Sprintf("%d (earliest %s)", m.MessagesWithExpiry, earliest)},
			[]string{"MQTT 5: deliveries with properties", inspectInt(m.DeliveriesWithProperties)},
			[]string{"MQTT 5: sessions that expire", inspectInt(m.SessionsExpiring)},
			[]string{"MQTT 5: subscriptions with identifier / options", fmt.Sprintf("%d / %d", m.SubsWithID, m.SubsWithOptions)})
	}
	if err := renderInspectTable(w, []string{"property", "value"}, file); err != nil {
		return err
	}
	c := st.Chunks
	chunks := [][]string{
		{"CFG", strconv.Itoa(c.CFG)},
		{"MSG_STORE", strconv.Itoa(c.MsgStore)},
		{"CLIENT_MSG", strconv.Itoa(c.ClientMsg)},
		{"RETAIN", strconv.Itoa(c.Retain)},
		{"SUB", strconv.Itoa(c.Sub)},
		{"CLIENT", strconv.Itoa(c.Client)},
	}
	if c.Unknown > 0 {
		chunks = append(chunks, []string{"unknown", strconv.Itoa(c.Unknown)})
	}
	if err := renderInspectTable(w, []string{"chunk", "count"}, chunks); err != nil {
		return err
	}
	if len(st.Clients) == 0 {
		_, err := fmt.Fprintln(w, "no clients")
		return err
	}
	clients := make([][]string, 0, len(st.Clients))
	for _, cs := range st.Clients {
		session := "yes"
		if !cs.HasRecord {
			session = "no"
		}
		clients = append(clients, []string{
			cs.ClientID, session, strconv.Itoa(cs.Subs),
			inspectInt(cs.OutQueued), inspectInt(cs.OutInflight), inspectInt(cs.InQueued), inspectInt(cs.InInflight),
		})
	}
	return renderInspectTable(w, []string{"client", "session", "subs", "out queued", "out inflight", "in queued", "in inflight"}, clients)
}
