package conf

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Header is the first line Write emits, so a reader (and launch, before it
// overwrites a file) can tell a generated config from a user's.
const Header = "# mosquitto.conf written by mqbench"

// notInMosquitto2 are keys we accept (older Mosquitto had them) that 2.0.11 rejects
// as unknown: Write keeps them as comments so the file still starts a real broker.
var notInMosquitto2 = map[string]bool{"store_clean_interval": true}

// Write writes the config as a mosquitto.conf that Mosquitto 2.0.11 accepts: the
// accepted lines in order (include_dir already expanded), so settings we only
// recognise pass through to a real broker unchanged.
func (c *Config) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, Header)
	for _, s := range c.Lines {
		line := s.String()
		if strings.ContainsAny(line, "\r\n") {
			return fmt.Errorf("writing %s (%s): value contains a line break", s.Key, place(s))
		}
		if notInMosquitto2[s.Key] {
			fmt.Fprintf(bw, "# %s  (not accepted by mosquitto 2.0)\n", line)
			continue
		}
		fmt.Fprintln(bw, line)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	return nil
}

// Strings renders the accepted lines as mosquitto.conf text lines, for the run
// header (bench.Header.BrokerConfig).
func (c *Config) Strings() []string {
	out := make([]string, len(c.Lines))
	for i, s := range c.Lines {
		out[i] = s.String()
	}
	return out
}
