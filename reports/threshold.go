package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// summaryDoc is summary.json as a generic tree, so any numeric field can be
// named by its path without a hand-kept list that would drift from the schema.
type summaryDoc map[string]any

func docFromJSON(b []byte) (summaryDoc, error) {
	var d summaryDoc
	if err := json.Unmarshal(b, &d); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("byte offset %d: %w", se.Offset, err)
		}
		return nil, err
	}
	return d, nil
}

func docFrom(v any) (summaryDoc, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return docFromJSON(b)
}

// lookup resolves a dotted path (numeric segments index arrays:
// subscribers.0.lost) to a number; booleans count as 0/1 so "tainted == 0" works.
func (d summaryDoc) lookup(path string) (float64, bool, error) {
	var cur any = map[string]any(d)
	for _, seg := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return 0, false, nil
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return 0, false, nil
			}
			cur = c[i]
		default:
			return 0, false, nil
		}
	}
	switch v := cur.(type) {
	case float64:
		return v, true, nil
	case bool:
		if v {
			return 1, true, nil
		}
		return 0, true, nil
	case nil:
		return 0, false, nil
	}
	return 0, true, fmt.Errorf("metric %s is not a number", path)
}

// isNull reports whether path names a key whose value is null: a metric the
// summary has but the run could not measure, unlike a key that does not exist.
func (d summaryDoc) isNull(path string) bool {
	var cur any = map[string]any(d)
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[seg]; !ok {
			return false
		}
	}
	return cur == nil
}

// formatMetric renders a metric value in its unit for the findings table.
func formatMetric(path string, v float64) string {
	last := path[strings.LastIndex(path, ".")+1:]
	switch {
	case strings.HasSuffix(last, "_ns"):
		return formatNS(int64(v))
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return groupInt(int64(v))
	}
	return groupFloat(v, 2)
}
