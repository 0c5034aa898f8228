package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/broker/conf"
)

var (
	brokerConfigFile string
	brokerPorts      []int
	brokerVerbose    bool
)

var brokerCmd = &cobra.Command{
	Use:   "broker [-c FILE] [-p PORT]... [-v]",
	Short: "Run the bundled MQTT broker (Mosquitto 2.0 queueing and persistence model)",
	Long: `Run the bundled MQTT 3.1/3.1.1 broker with a mosquitto.conf (-c) or Mosquitto 2.0's
defaults. One line "mqbench broker VERSION listening on HOST:PORT" is printed per
listener once it accepts connections. The flags are Mosquitto's: -p PORT (repeatable)
sets the ports of local-only mode (127.0.0.1 and ::1, used when the config has no
listener), -v enables every log type.

Signals: SIGUSR1 saves the persistence file now; SIGTERM and SIGINT send the wills
of connected clients, save a final snapshot and exit 0; SIGHUP reloads the
configuration as Mosquitto does: the password and ACL files are read again and
connected clients checked against them (see docs/security.md).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		return runBroker(cmd.OutOrStdout(), cmd.ErrOrStderr())
	},
}

func init() {
	brokerCmd.Flags().StringVarP(&brokerConfigFile, "config", "c", "", "mosquitto.conf to read (default: Mosquitto 2.0 defaults)")
	brokerCmd.Flags().IntSliceVarP(&brokerPorts, "port", "p", nil, "port of local-only mode (repeatable; ignored when the config has a listener, as in mosquitto)")
	brokerCmd.Flags().BoolVarP(&brokerVerbose, "verbose", "v", false, "enable every log type (log_type all), as mosquitto -v")
	rootCmd.AddCommand(brokerCmd)
}

func runBroker(stdout, stderr io.Writer) error {
	cfg := conf.Default()
	if brokerConfigFile != "" {
		var err error
		if cfg, err = conf.ParseFile(brokerConfigFile); err != nil {
			return err
		}
	}
	for _, p := range brokerPorts {
		if p < 1 || p > 65535 {
			return fmt.Errorf("invalid port specified (%d)", p)
		}
	}
	if brokerVerbose {
		cfg.LogType = []string{"all"}
	}
	logW, closeLog, err := brokerLog(cfg, stdout, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	b, err := broker.New(broker.Options{Config: cfg, ConfigFile: brokerConfigFile, Log: logW, Version: version, LocalPorts: brokerPorts})
	if err != nil {
		return err
	}
	for _, n := range b.Notices() {
		fmt.Fprintln(stderr, "mqbench broker:", n)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := b.Start(); err != nil {
		return err
	}
	if cfg.PidFile != "" {
		if err := broker.WritePIDFile(cfg.PidFile); err != nil {
			b.Abort()
			return err
		}
		defer os.Remove(cfg.PidFile)
	}
	// The addresses really bound: a listener without an address binds every
	// interface, and the line says so rather than naming loopback.
	for _, a := range b.Listening() {
		fmt.Fprintf(stdout, "mqbench broker %s listening on %s\n", version, a)
	}
	for sig := range sigs {
		switch sig {
		case syscall.SIGUSR1:
			if err := b.Save(); err != nil {
				fmt.Fprintln(stderr, "mqbench broker: save:", err)
			}
		case syscall.SIGHUP:
			// The broker logs what it applied and what it could not.
			_ = b.Reload(reloadConfig)
		default:
			return b.Close()
		}
	}
	return nil
}

// reloadConfig reads the configuration file again for a SIGHUP (nil without
// -c: Mosquitto then re-reads only the password and ACL files).
func reloadConfig() (*conf.Config, error) {
	if brokerConfigFile == "" {
		return nil, nil
	}
	cfg, err := conf.ParseFile(brokerConfigFile)
	if err != nil {
		return nil, err
	}
	if brokerVerbose {
		cfg.LogType = []string{"all"}
	}
	return cfg, nil
}

// brokerLog turns log_dest into one writer: stdout, stderr and a file are
// honoured, syslog/topic/dlt are reported as notices by the config parser.
func brokerLog(cfg *conf.Config, stdout, stderr io.Writer) (io.Writer, func(), error) {
	var ws []io.Writer
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	for _, d := range cfg.LogDest {
		switch {
		case d == "stdout":
			ws = append(ws, stdout)
		case d == "stderr":
			ws = append(ws, stderr)
		case strings.HasPrefix(d, "file "):
			path := strings.TrimSpace(strings.TrimPrefix(d, "file "))
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("opening log file: %w", err)
			}
			files = append(files, f)
			ws = append(ws, f)
		}
	}
	if len(ws) == 0 {
		return io.Discard, closeAll, nil
	}
	return io.MultiWriter(ws...), closeAll, nil
}
