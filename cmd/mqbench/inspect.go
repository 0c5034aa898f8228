package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/mqbench/mqbench/broker/persist"
)

// inspectCmd decodes a mosquitto.db (any broker's, formats 2-6) and shows what
// it holds, so a saved file can be checked for backlog, duplicates and
// orphans without starting a broker. It only reads the file.
var inspectCmd = &cobra.Command{
	Use:   "inspect DBFILE",
	Short: "Show what a mosquitto.db holds: chunks, held messages per client, duplicates",
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		asJSON, err := cmd.Flags().GetBool("json")
		if err != nil {
			return err
		}
		path := args[0]
		db, err := persist.ReadFile(path)
		if err != nil {
			return err
		}
		st := db.Stats()
		out := cmd.OutOrStdout()
		if asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			if err := enc.Encode(st); err != nil {
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
		return nil
	},
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
// with mosquitto_db_dump --stats), and what each client holds.
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
