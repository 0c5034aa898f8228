package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// HashType is a password hash format of Mosquitto's password file
// (enum mosquitto_pwhash_type in src/password_mosq.h).
type HashType int

const (
	// SHA512 is "$6$SALT$HASH", the Mosquitto 1.x format: one SHA-512 of
	// the password bytes followed by the 12 salt bytes. mosquitto_passwd -H
	// sha512 still writes it.
	SHA512 HashType = 6
	// PBKDF2SHA512 is "$7$ITERATIONS$SALT$HASH", the 2.0 default:
	// PBKDF2-HMAC-SHA512 of the password over the 12 salt bytes, 64 bytes out.
	PBKDF2SHA512 HashType = 7
)

// Layout constants of both formats (SALT_LEN, PW_DEFAULT_ITERATIONS and the
// 64-byte password_hash of struct mosquitto_pw). SALT and HASH are standard
// padded base64 (16 and 88 characters).
const (
	saltLen = 12
	hashLen = 64
	// DefaultIterations is what mosquitto_passwd 2.0.11 uses without -I.
	DefaultIterations = 101
)

// HashOptions tune HashPasswordOpts.
type HashOptions struct {
	// Type is the format; 0 = PBKDF2SHA512.
	Type HashType
	// Iterations for PBKDF2SHA512; 0 = DefaultIterations.
	Iterations int
	// Salt is the 12-byte salt; nil = random, as mosquitto_passwd does.
	// Tests set it for a reproducible hash.
	Salt []byte
}

// HashPassword hashes password the way mosquitto_passwd 2.0.11 does by default
// ($7$, 101 iterations, 12 random salt bytes) and returns the password field
// of a password file line, "$7$101$SALT$HASH".
func HashPassword(password string) (string, error) {
	return HashPasswordOpts(password, HashOptions{})
}

// HashPasswordOpts is HashPassword with a choice of format, iteration count
// and salt. A password containing a NUL byte is refused: Mosquitto hashes the
// CONNECT password as a C string, so it could never match.
func HashPasswordOpts(password string, o HashOptions) (string, error) {
	if strings.IndexByte(password, 0) >= 0 {
		return "", errors.New("password contains a NUL byte, which Mosquitto cannot check")
	}
	if o.Type == 0 {
		o.Type = PBKDF2SHA512
	}
	if o.Type != SHA512 && o.Type != PBKDF2SHA512 {
		return "", fmt.Errorf("unknown hash type %d", o.Type)
	}
	if o.Iterations == 0 {
		o.Iterations = DefaultIterations
	}
	if o.Iterations < 1 || o.Iterations > 1<<31-1 {
		return "", fmt.Errorf("iterations %d out of range (1 to 2147483647)", o.Iterations)
	}
	salt := o.Salt
	if salt == nil {
		salt = make([]byte, saltLen)
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("making a salt: %w", err)
		}
	}
	if len(salt) != saltLen {
		return "", fmt.Errorf("salt is %d bytes, Mosquitto needs %d", len(salt), saltLen)
	}
	return formatHash(o.Type, o.Iterations, salt, digest(o.Type, password, salt, o.Iterations)), nil
}

// PasswordLine is a whole password file line "username:HASH\n" for a new
// $7$ hash, after the username checks mosquitto_passwd makes (no ':' and no
// control characters, under 65536 bytes) plus non-empty, since an empty
// username can never log in.
func PasswordLine(username, password string) (string, error) {
	if err := validUsername(username); err != nil {
		return "", err
	}
	h, err := HashPassword(password)
	if err != nil {
		return "", err
	}
	return username + ":" + h + "\n", nil
}

// validUsername is mosquitto_passwd's is_username_valid, plus non-empty and
// no surrounding whitespace (Mosquitto trims it when reading).
func validUsername(u string) error {
	switch {
	case u == "":
		return errors.New("empty username")
	case len(u) > maxField:
		return errors.New("username must be less than 65536 characters long")
	case strings.ContainsRune(u, ':'):
		return errors.New("username must not contain the ':' character")
	case trimBlanks(u) != u:
		return errors.New("username must not start or end with whitespace")
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x20 || u[i] == 0x7f {
			return errors.New("username must not contain control characters")
		}
	}
	return nil
}

// digest is pw__digest: the stored hash for password under the entry's
// format. Like Mosquitto it cannot fail for the two known formats.
func digest(kind HashType, password string, salt []byte, iterations int) []byte {
	if kind == SHA512 {
		h := sha512.New()
		h.Write([]byte(password))
		h.Write(salt)
		return h.Sum(nil)
	}
	k, err := pbkdf2.Key(sha512.New, password, salt, iterations, hashLen)
	if err != nil {
		// Only FIPS-140-only mode refuses (short salt); nothing matches then.
		return nil
	}
	return k
}

// formatHash renders a password field as mosquitto_passwd writes it.
func formatHash(kind HashType, iterations int, salt, hash []byte) string {
	s := base64.StdEncoding.EncodeToString(salt)
	h := base64.StdEncoding.EncodeToString(hash)
	if kind == SHA512 {
		return "$6$" + s + "$" + h
	}
	return "$7$" + strconv.Itoa(iterations) + "$" + s + "$" + h
}
