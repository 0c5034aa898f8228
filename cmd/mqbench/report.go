package main

import (
	"fmt"

	"github.com/mqbench/mqbench/reports"
	"github.com/spf13/cobra"
)

// reportCmd re-renders recorded runs, so a run made with older code (or whose
// plots were deleted) gets the current summary, report and plots.
var reportCmd = &cobra.Command{
	Use:   "report RUN...",
	Short: "Re-render summary.json, report.md, report.html and plots of recorded runs and print their tables",
	Args:  cobra.MinimumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		for i, dir := range args {
			s, err := reports.Render(dir)
			if err != nil {
				return fmt.Errorf("rendering %s: %w", dir, err)
			}
			if i > 0 {
				fmt.Fprintln(cmd.OutOrStdout())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n%s", dir, reports.SummaryTable(s))
			for _, w := range reports.Warnings(s) {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", w)
			}
		}
		return nil
	},
}

func init() { rootCmd.AddCommand(reportCmd) }
