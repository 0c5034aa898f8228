package main

import (
	"fmt"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/mqbench/mqbench/scenarios"
)

// scenariosCmd lists the shipped scenarios, so `mqbench run NAME` is
// discoverable without reading the source.
var scenariosCmd = &cobra.Command{
	Use:   "scenarios",
	Short: "List the shipped scenarios (mqbench run NAME)",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		t := tablewriter.NewTable(cmd.OutOrStdout(),
			tablewriter.WithHeaderAutoFormat(tw.Off),
			tablewriter.WithHeaderAlignment(tw.AlignLeft),
			tablewriter.WithRowAlignment(tw.AlignLeft),
			tablewriter.WithRowAutoWrap(tw.WrapNormal),
			tablewriter.WithColumnMax(72),
		)
		t.Header([]string{"name", "description"})
		for _, s := range scenarios.Shipped() {
			if err := t.Append([]string{s.Name, s.Description}); err != nil {
				return fmt.Errorf("listing scenarios: %w", err)
			}
		}
		if err := t.Render(); err != nil {
			return fmt.Errorf("listing scenarios: %w", err)
		}
		return nil
	},
}

func init() { rootCmd.AddCommand(scenariosCmd) }
