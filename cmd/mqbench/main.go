// Command mqbench measures what MQTT brokers do with persistence and queues under
// backlog. Every subcommand lives in its own file of this package and registers
// itself with rootCmd from an init function, so the wiring stays one line per
// command and the work stays in the library packages.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is stamped by the Makefile (-ldflags "-X main.version=...") so every
// recorded run says which mqbench produced it.
var version = "dev"

// exitError carries an exit code through cobra, which only knows about errors:
// 1 for tool/input errors, 3 for a failed threshold or regression.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

var rootCmd = &cobra.Command{
	Use:           "mqbench",
	Short:         "Persistence and QoS experiment harness and load tester for MQTT brokers",
	SilenceUsage:  true,
	SilenceErrors: true,
	Version:       version,
}

func main() {
	rootCmd.Version = version
	err := rootCmd.Execute()
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if ee == nil || ee.err != nil && ee.err.Error() != "" {
		fmt.Fprintln(os.Stderr, "mqbench:", err)
	}
	os.Exit(code)
}
