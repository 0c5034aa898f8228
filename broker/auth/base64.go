package auth

// Mosquitto decodes the salt and hash fields with an OpenSSL base64 BIO in
// no-newline mode (base64__decode in src/password_mosq.c). That decoder is far
// more lenient than encoding/base64 and a field it accepts must be accepted
// here too, or a password file working with Mosquitto would lock users out of
// the bundled broker (and the reverse). The rules below were measured against
// libcrypto 3 (the one the installed Mosquitto 2.0.11 links to) on random
// inputs:
//
//   - only the first len&^3 characters are used: up to three trailing
//     characters of any kind are ignored;
//   - of those, leading blanks (space, tab) and trailing space, tab, CR, LF and
//     '-' are dropped, and what is left must be a multiple of four characters
//     of the base64 alphabet or '=';
//   - '=' anywhere decodes as zero bits, and only a '=' in the last one or two
//     of the used characters shortens the output;
//   - an empty result is a failure.
//
// Known deviation: the BIO works in 1024-byte blocks, which this single-block
// model does not reproduce for fields with 1024 or more leading blanks (such
// fields are rejected by Mosquitto and may decode here).

const (
	b64Invalid = 0xFF
	b64Blank   = 0xE0 // space, tab: trimmed at both ends
	b64Trail   = 0xF0 // CR, LF, '-': trimmed at the end only
)

var b64Table = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = b64Invalid
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['='] = 0
	t[' '], t['\t'] = b64Blank, b64Blank
	t['\r'], t['\n'], t['-'] = b64Trail, b64Trail, b64Trail
	return t
}()

// opensslB64Decode decodes s the way Mosquitto's base64__decode does and
// reports false where it fails.
func opensslB64Decode(s string) ([]byte, bool) {
	used := s[:len(s)&^3]
	f := used
	for len(f) > 0 && b64Table[f[0]] == b64Blank {
		f = f[1:]
	}
	for len(f) > 3 && (b64Table[f[len(f)-1]] == b64Blank || b64Table[f[len(f)-1]] == b64Trail) {
		f = f[:len(f)-1]
	}
	if len(f)%4 != 0 {
		return nil, false
	}
	out := make([]byte, 0, len(f)/4*3)
	for i := 0; i < len(f); i += 4 {
		var v uint32
		for k := 0; k < 4; k++ {
			c := b64Table[f[i+k]]
			if c&0x80 != 0 {
				return nil, false
			}
			v = v<<6 | uint32(c)
		}
		out = append(out, byte(v>>16), byte(v>>8), byte(v))
	}
	z := len(out)
	if len(used) > 2 && used[len(used)-1] == '=' {
		z--
		if used[len(used)-2] == '=' {
			z--
		}
	}
	if z <= 0 {
		return nil, false
	}
	return out[:z], true
}
