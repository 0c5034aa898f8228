package main

import (
	"fmt"
	"path/filepath"

	"github.com/mqbench/mqbench/reports"
	"github.com/spf13/cobra"
)

var compareOut string

// compareCmd puts runs side by side, typically one scenario with different
// autosave intervals, so the effect of a setting is one table and one plot.
var compareCmd = &cobra.Command{
	Use:   "compare RUN... --out DIR",
	Short: "Compare runs: a table and an overlaid file-size plot (compare.md, compare.html, compare-persistence.png)",
	Args:  cobra.MinimumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		text, err := reports.Compare(args, compareOut)
		if err != nil {
			return err
		}
		fmt.Fprint(cmd.OutOrStdout(), text)
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s, %s and %s\n", filepath.Join(compareOut, reports.CompareFile),
			filepath.Join(compareOut, reports.CompareHTML), filepath.Join(compareOut, reports.ComparePersistencePNG))
		return nil
	},
}

func init() {
	compareCmd.Flags().StringVar(&compareOut, "out", "", "directory for compare.md, compare.html and compare-persistence.png (created if missing)")
	_ = compareCmd.MarkFlagRequired("out")
	rootCmd.AddCommand(compareCmd)
}
