package bench

import "testing"

// TestReasonLabels: labels round-trip and name codes as the standard does.
func TestReasonLabels(t *testing.T) {
	if got := ReasonLabel(rcPuback, 0x10); got != "puback 0x10" {
		t.Errorf("label = %q", got)
	}
	if got := ReasonLabel("auth", 0x18); got != "auth 0x18" {
		t.Errorf("label = %q", got)
	}
	pkt, code, ok := ParseReason("pubrec 0x97")
	if !ok || pkt != rcPubrec || code != 0x97 || ReasonName(pkt, code) != "quota exceeded" || !ReasonFailed(code) {
		t.Errorf("ParseReason = %q %#x %v", pkt, code, ok)
	}
	if _, _, ok := ParseReason("puback"); ok {
		t.Error("a label without a code parsed")
	}
	if ReasonName(rcSuback, 0) != "granted QoS 0" || ReasonName(rcPuback, 0) != "success" || ReasonName(rcPuback, 0x7f) != "unknown reason code" {
		t.Error("names")
	}
	if n := testing.AllocsPerRun(100, func() { _ = ReasonLabel(rcPubcomp, 0x92) }); n != 0 {
		t.Errorf("ReasonLabel allocates %v times", n)
	}
}
