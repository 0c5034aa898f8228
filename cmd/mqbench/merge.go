package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqbench/mqbench/merge"
	"github.com/mqbench/mqbench/reports"
)

var mergeFlags struct{ out string }

// mergeCmd joins the shards of one distributed run into one run directory.
var mergeCmd = &cobra.Command{
	Use:   "merge SHARD_RUN... --out DIR",
	Short: "Merge the run directories of a run's shards (--shard I/N) into one run, and report it",
	Long: `Merge the run directories of the N shards of one run (mqbench run --shard I/N,
on one machine or many) into one run directory: one event file on one clock,
the whole scenario in its header. report, compare and check read it like any
other run; its summary, report and plots are rendered at once.

A delivery recorded on one host of a message published on another gets its
publish time from the other host's file; such latencies carry both hosts'
clock error, which the report states (see docs/distributed.md).`,
	Args: cobra.MinimumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		if mergeFlags.out == "" {
			return errors.New("--out DIR is required: where the merged run goes")
		}
		res, err := merge.Merge(args, mergeFlags.out)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "merged %d shards: %d events, %d deliveries across hosts -> %s\n", res.Shards, res.Events, res.CrossHost, res.Dir)
		s, err := reports.Render(res.Dir)
		if err != nil {
			return fmt.Errorf("rendering %s: %w", res.Dir, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n%s", res.Dir, reports.SummaryTable(s))
		for _, w := range reports.Warnings(s) {
			fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", w)
		}
		return nil
	},
}

func init() {
	mergeCmd.Flags().StringVar(&mergeFlags.out, "out", "", "directory of the merged run (required; must not hold a run)")
	rootCmd.AddCommand(mergeCmd)
}
