package runfile

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/mqbench/mqbench/scenarios"
)

// DecodeScenario returns the resolved scenario the header records, typed. It
// is the one decoder of Header.Scenario: the analysis, the reports and merge
// all read the scenario through it, so a run reads the same to each of them.
// Every header ever written decodes: scenarios.Duration reads both encodings
// recorded (Go duration strings, and integer nanoseconds from early runs),
// and scenario fields are only ever added. (nil, nil) when the header holds
// no scenario.
func (h *Header) DecodeScenario() (*scenarios.Scenario, error) {
	raw := bytes.TrimSpace(h.Scenario)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var sc scenarios.Scenario
	if err := json.Unmarshal(raw, &sc); err != nil {
		return nil, fmt.Errorf("decoding the scenario recorded in the header: %w", err)
	}
	return &sc, nil
}
