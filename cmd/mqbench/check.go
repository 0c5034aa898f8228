package main

import (
	"fmt"

	"github.com/mqbench/mqbench/reports"
	"github.com/spf13/cobra"
)

var checkOpts struct {
	baseline     string
	tolerance    float64
	allowTainted bool
	thresholds   []string
	metrics      []string
}

// checkCmd is the CI gate: exit 0 when the run meets its thresholds and the
// baseline, 3 when it does not, 1 when the check itself could not be made.
var checkCmd = &cobra.Command{
	Use:   "check RUN",
	Short: "Check a run against its thresholds and a baseline summary (exit 3 on failure)",
	Long: `Check re-summarizes RUN and applies the scenario's thresholds, any --threshold
expressions ("persist.max_bytes <= 3MB", "lost == 0") and, with --baseline, compares
the persistence and correctness metrics to a baseline summary.json. See
docs/thresholds.md. Exit codes: 0 pass, 3 a finding failed, 1 bad input.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		o := reports.CheckOptions{
			Baseline:     checkOpts.baseline,
			Tolerance:    checkOpts.tolerance,
			AllowTainted: checkOpts.allowTainted,
			Thresholds:   checkOpts.thresholds,
			Metrics:      checkOpts.metrics,
		}
		if cmd.Flags().Changed("tolerance") && checkOpts.tolerance == 0 {
			o.Exact = true
		}
		res, err := reports.Check(args[0], o)
		if err != nil {
			return err
		}
		fmt.Fprint(cmd.OutOrStdout(), res.Table())
		if err := res.Err(); err != nil {
			return &exitError{code: 3, err: err}
		}
		fmt.Fprintln(cmd.OutOrStdout(), "check passed")
		return nil
	},
}

func init() {
	f := checkCmd.Flags()
	f.StringVar(&checkOpts.baseline, "baseline", "", "baseline summary.json (or run directory) to compare with")
	f.Float64Var(&checkOpts.tolerance, "tolerance", reports.DefaultTolerance, "percent a gated metric may be worse than the baseline (0 = exact)")
	f.BoolVar(&checkOpts.allowTainted, "allow-tainted", false, "do not fail a tainted or incomplete run")
	f.StringArrayVar(&checkOpts.thresholds, "threshold", nil, `extra threshold "METRIC OP VALUE" (repeatable)`)
	f.StringSliceVar(&checkOpts.metrics, "metrics", nil, "baseline metrics to gate, comma-separated (\"default\" = the persistence and correctness set)")
	rootCmd.AddCommand(checkCmd)
}
