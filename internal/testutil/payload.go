package testutil

import (
	"bytes"
	"fmt"
	"strconv"
)

// PayloadSize is the message size of the seed experiment (a JSON object with an
// id, a timestamp and two 50-character strings, about 150 bytes).
const PayloadSize = 150

const payloadAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Payload returns the i-th test message: JSON shaped like the seed experiment's,
// exactly size bytes (at least 40), deterministic in i so a receiver can check
// every byte and recover i with PayloadID.
func Payload(i, size int) []byte {
	head := fmt.Sprintf(`{"id":%d,"Timestamp":%d,"str1":"`, i, 1700000000000+int64(i))
	if size < len(head)+2 {
		size = len(head) + 2
	}
	b := make([]byte, 0, size)
	b = append(b, head...)
	x := uint32(i)*2654435761 + 12345
	for len(b) < size-2 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b = append(b, payloadAlphabet[x%uint32(len(payloadAlphabet))])
	}
	return append(b, '"', '}')
}

// PayloadID recovers i from a Payload.
func PayloadID(p []byte) (int, error) {
	const prefix = `{"id":`
	if !bytes.HasPrefix(p, []byte(prefix)) {
		return 0, fmt.Errorf("payload %q does not start with %s", truncate(p), prefix)
	}
	rest := p[len(prefix):]
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0, fmt.Errorf("payload %q has no id", truncate(p))
	}
	id, err := strconv.Atoi(string(rest[:end]))
	if err != nil {
		return 0, fmt.Errorf("payload id: %w", err)
	}
	return id, nil
}

func truncate(p []byte) []byte {
	if len(p) > 40 {
		return p[:40]
	}
	return p
}
