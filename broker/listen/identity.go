package listen

import (
	"bytes"
	"crypto/tls"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mqbench/mqbench/broker/conf"
)

// CertificateUsername reports whether clients of l get their username from
// their TLS certificate instead of CONNECT (use_identity_as_username or
// use_subject_as_username). As in Mosquitto 2.0.11 (handle_connect.c tests
// listener->ssl_ctx) only TLS listeners of protocol mqtt do; on plain and
// websockets listeners the options are ignored (Check reports that).
func CertificateUsername(l conf.Listener) bool {
	return isTLS(l) && !isWS(l) && (l.UseIdentityAsUsername || l.UseSubjectAsUsername)
}

// Identity is the username Mosquitto 2.0.11 derives from a client's
// certificate on a listener where CertificateUsername is true; ok false means
// the CONNECT must be refused with "bad username or password" (no
// certificate, no CN, a CN with an embedded NUL, or a listener where the
// options do not apply). CONNECT's own username and password are then
// discarded either way.
//
//   - use_identity_as_username (checked first, it wins over the other): the
//     raw bytes of the subject's first commonName attribute, as
//     ASN1_STRING_get0_data returns them (no character set conversion);
//   - use_subject_as_username: the subject as X509_NAME_print_ex(...,
//     XN_FLAG_RFC2253) prints it, see SubjectRFC2253.
func Identity(state tls.ConnectionState, l conf.Listener) (username string, ok bool) {
	if !CertificateUsername(l) || len(state.PeerCertificates) == 0 {
		return "", false
	}
	rdns, err := parseName(state.PeerCertificates[0].RawSubject)
	if err != nil {
		return "", false
	}
	if l.UseIdentityAsUsername {
		for _, rdn := range rdns {
			for _, atv := range rdn {
				if atv.Type.Equal(oidCommonName) {
					if bytes.IndexByte(atv.Value.Bytes, 0) >= 0 {
						return "", false
					}
					return string(atv.Value.Bytes), true
				}
			}
		}
		return "", false
	}
	s, err := formatRFC2253(rdns)
	if err != nil {
		return "", false
	}
	return s, true
}

// SubjectRFC2253 renders a DER subject (x509.Certificate.RawSubject) the way
// OpenSSL's X509_NAME_print_ex with XN_FLAG_RFC2253 does, which is what
// `openssl x509 -noout -subject -nameopt RFC2253` prints after "subject=":
// RDNs in reverse order separated by ',' (multi-valued ones joined by '+',
// also reversed), short attribute names from OpenSSL's table (unknown OIDs in
// dotted form with the value as '#' and its DER in upper-case hex), values
// converted to UTF-8 and escaped as escapeValue describes. TestSubjectRFC2253
// MatchesOpenSSL and TestIdentityMatchesMosquitto hold it to both.
func SubjectRFC2253(rawSubject []byte) (string, error) {
	rdns, err := parseName(rawSubject)
	if err != nil {
		return "", err
	}
	return formatRFC2253(rdns)
}

// rawATV keeps an attribute value's ASN.1 tag and bytes: OpenSSL's output
// depends on the string type, which pkix.Name discards.
type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rawRDNSET is one RDN; encoding/asn1 reads a type named ...SET as a SET.
type rawRDNSET []rawATV

func parseName(raw []byte) ([]rawRDNSET, error) {
	var rdns []rawRDNSET
	rest, err := asn1.Unmarshal(raw, &rdns)
	if err != nil {
		return nil, fmt.Errorf("parsing subject: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("parsing subject: %d trailing bytes", len(rest))
	}
	return rdns, nil
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// shortNames is OpenSSL's OBJ_nid2sn for the attribute types certificates
// commonly carry (crypto/objects/objects.txt). A type not listed here prints
// as an unknown one (dotted OID, '#' hex value), which OpenSSL would print by
// name if it knows it: extend the table when a new type shows up.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.13":                   "description",
	"2.5.4.15":                   "businessCategory",
	"2.5.4.16":                   "postalAddress",
	"2.5.4.17":                   "postalCode",
	"2.5.4.18":                   "postOfficeBox",
	"2.5.4.20":                   "telephoneNumber",
	"2.5.4.41":                   "name",
	"2.5.4.42":                   "GN",
	"2.5.4.43":                   "initials",
	"2.5.4.44":                   "generationQualifier",
	"2.5.4.45":                   "x500UniqueIdentifier",
	"2.5.4.46":                   "dnQualifier",
	"2.5.4.65":                   "pseudonym",
	"2.5.4.72":                   "role",
	"2.5.4.97":                   "organizationIdentifier",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.3.6.1.4.1.311.60.2.1.1":   "jurisdictionL",
	"1.3.6.1.4.1.311.60.2.1.2":   "jurisdictionST",
	"1.3.6.1.4.1.311.60.2.1.3":   "jurisdictionC",
}

func formatRFC2253(rdns []rawRDNSET) (string, error) {
	type entry struct {
		set int
		atv rawATV
	}
	var flat []entry
	for i, rdn := range rdns {
		for _, atv := range rdn {
			flat = append(flat, entry{i, atv})
		}
	}
	var b strings.Builder
	prev := -1
	for i := len(flat) - 1; i >= 0; i-- { // XN_FLAG_DN_REV
		e := flat[i]
		if prev != -1 {
			if prev == e.set {
				b.WriteByte('+')
			} else {
				b.WriteByte(',')
			}
		}
		prev = e.set
		name, known := shortNames[e.atv.Type.String()]
		if !known {
			name = e.atv.Type.String()
		}
		b.WriteString(name)
		b.WriteByte('=')
		v, err := formatValue(e.atv.Value, known)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// formatValue is do_print_ex with ASN1_STRFLGS_RFC2253: string types are
// converted to UTF-8 and escaped; anything else, and every value of an
// unknown attribute type (XN_FLAG_DUMP_UNKNOWN_FIELDS), is '#' and its DER
// in hex.
func formatValue(v asn1.RawValue, knownType bool) (string, error) {
	if !knownType || v.Class != asn1.ClassUniversal {
		return dumpDER(v), nil
	}
	var runes []rune
	switch v.Tag {
	case asn1.TagUTF8String:
		if !utf8.Valid(v.Bytes) {
			return "", fmt.Errorf("invalid UTF-8 in subject value")
		}
		runes = []rune(string(v.Bytes))
	case asn1.TagNumericString, asn1.TagPrintableString, asn1.TagT61String, asn1.TagIA5String,
		asn1.TagUTCTime, asn1.TagGeneralizedTime, 26: // 26 = VisibleString (ISO646String)
		for _, c := range v.Bytes {
			runes = append(runes, rune(c)) // one byte per character, Latin-1
		}
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", fmt.Errorf("odd BMPString length in subject value")
		}
		for i := 0; i < len(v.Bytes); i += 2 {
			runes = append(runes, rune(binary.BigEndian.Uint16(v.Bytes[i:])))
		}
	case 28: // UniversalString
		if len(v.Bytes)%4 != 0 {
			return "", fmt.Errorf("bad UniversalString length in subject value")
		}
		for i := 0; i < len(v.Bytes); i += 4 {
			runes = append(runes, rune(binary.BigEndian.Uint32(v.Bytes[i:])))
		}
	default:
		return dumpDER(v), nil
	}
	return escapeValue(runes), nil
}

// escapeValue applies OpenSSL's RFC 2253 escaping (a_strex.c do_esc_char
// with ASN1_STRFLGS_ESC_2253|ESC_CTRL|ESC_MSB and UTF8_CONVERT): each
// character is written as UTF-8, every byte above 0x7E (DEL and all of
// multi-byte UTF-8) and below 0x20 as \XX, the RFC 2253 specials , + " \ < > ; with a backslash,
// and '#' or ' ' first and ' ' last with a backslash.
func escapeValue(runes []rune) string {
	var b strings.Builder
	for i, r := range runes {
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], r)
		for _, c := range buf[:n] {
			switch {
			case c > 0x7e || c < 0x20:
				fmt.Fprintf(&b, "\\%02X", c)
			case strings.IndexByte(`,+"\<>;`, c) >= 0:
				b.WriteByte('\\')
				b.WriteByte(c)
			case i == 0 && (c == '#' || c == ' '):
				b.WriteByte('\\')
				b.WriteByte(c)
			case i == len(runes)-1 && c == ' ':
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

func dumpDER(v asn1.RawValue) string {
	return "#" + strings.ToUpper(fmt.Sprintf("%x", v.FullBytes))
}
