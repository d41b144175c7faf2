package ldap

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
)

// ErrNoID is returned (wrapped) when an entry lacks the configured id attribute.
var ErrNoID = errors.New("entry has no id attribute")

// converter turns directory entries into connectors.Entry values, the same way for servers and
// LDIF files.
type converter struct {
	cfg Config
}

// GUIDString renders a 16-byte AD objectGUID in its canonical form: the first three fields are
// little-endian, the last eight bytes are kept as they are.
func GUIDString(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("ldap: objectGUID is %d bytes, want 16", len(b))
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16]), nil
}

// SIDString renders a binary objectSid as S-1-5-21-....
func SIDString(b []byte) (string, error) {
	if len(b) < 8 || len(b) != 8+4*int(b[1]) {
		return "", fmt.Errorf("ldap: objectSid of %d bytes is malformed", len(b))
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	var s strings.Builder
	s.WriteString("S-" + strconv.Itoa(int(b[0])) + "-" + strconv.FormatUint(auth, 10))
	for i := 0; i < int(b[1]); i++ {
		s.WriteString("-" + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10))
	}
	return s.String(), nil
}

// NormalizeDN returns the form of a DN that keys and member references use: attribute types
// and values lower-cased, spaces around separators dropped, escapes made uniform (RFC 4514
// specials only; UTF-8 is kept as is). A DN that does not parse is lower-cased and trimmed.
func NormalizeDN(dn string) string {
	if plainDN(dn) {
		return strings.ToLower(dn) // the common case, without parsing
	}
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(dn))
	}
	var b strings.Builder
	for i, rdn := range parsed.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		parts := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			parts[j] = strings.ToLower(a.Type) + "=" + escapeDNValue(strings.ToLower(a.Value))
		}
		slices.Sort(parts)
		b.WriteString(strings.Join(parts, "+"))
	}
	return b.String()
}

// plainDN reports whether a DN has no escapes, multi-valued RDNs, quotes or optional spaces,
// so that lower-casing it gives the same result as parsing and re-rendering it.
func plainDN(dn string) bool {
	if dn == "" || dn[0] == ' ' || dn[len(dn)-1] == ' ' {
		return false
	}
	for i := 0; i < len(dn); i++ {
		switch dn[i] {
		case '\\', '+', '"', '#', ';', '<', '>', 0:
			return false
		case ' ':
			if dn[i-1] == ',' || dn[i-1] == '=' || dn[i+1] == ',' || dn[i+1] == '=' {
				return false
			}
		}
	}
	return true
}

// escapeDNValue escapes an attribute value for a DN string (RFC 4514 section 2.4).
func escapeDNValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '+' || c == ',' || c == ';' || c == '<' || c == '>' || c == '\\',
			c == '#' && i == 0,
			c == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == 0:
			b.WriteString("\\00")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// attrValue renders one raw attribute value as a string: objectGUID and objectSid in their
// canonical forms, other valid UTF-8 as is, other binary values in base64.
func attrValue(name string, raw []byte) string {
	switch {
	case strings.EqualFold(name, "objectGUID"):
		if s, err := GUIDString(raw); err == nil {
			return s
		}
	case strings.EqualFold(name, "objectSid"):
		if s, err := SIDString(raw); err == nil {
			return s
		}
	}
	if utf8.Valid(raw) {
		return string(raw)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// attributes renders an entry's attributes, ranged member slices excluded (they are gathered
// separately).
func attributes(e *goldap.Entry) map[string][]string {
	attrs := make(map[string][]string, len(e.Attributes))
	for _, a := range e.Attributes {
		if _, _, _, ranged := parseRange(a.Name); ranged {
			continue
		}
		vals := make([]string, len(a.ByteValues))
		for i, raw := range a.ByteValues {
			vals[i] = attrValue(a.Name, raw)
		}
		attrs[a.Name] = append(attrs[a.Name], vals...)
	}
	return attrs
}

func values(attrs map[string][]string, name string) []string {
	return connectors.Entry{Attributes: attrs}.Values(name)
}

// user converts a user entry.
func (c converter) user(e *goldap.Entry) (connectors.Entry, error) {
	out, err := c.common(e)
	if err != nil {
		return out, err
	}
	for _, k := range c.cfg.Users.KeyAttributes {
		out.Keys = appendUnique(out.Keys, values(out.Attributes, k)...)
	}
	if c.cfg.FlavourName == FlavourActiveDirectory {
		disabled := "false"
		if uac := values(out.Attributes, "userAccountControl"); len(uac) > 0 {
			n, err := strconv.ParseInt(uac[0], 10, 64)
			if err != nil {
				return out, fmt.Errorf("ldap: user %q: userAccountControl %q: %w", e.DN, uac[0], err)
			}
			if n&0x2 != 0 {
				disabled = "true"
			}
		}
		out.Attributes[DisabledAttribute] = []string{disabled}
	}
	return out, nil
}

// group converts a group entry; members are the values of the member attributes (already
// complete: ranged slices are gathered by the caller and passed in).
func (c converter) group(e *goldap.Entry, rangedMembers []string) (connectors.Entry, error) {
	out, err := c.common(e)
	if err != nil {
		return out, err
	}
	for _, a := range c.cfg.Groups.MemberAttributes {
		for _, v := range values(out.Attributes, a) {
			out.Members = append(out.Members, NormalizeDN(stripOptionalUID(v)))
		}
	}
	for _, v := range rangedMembers {
		out.Members = append(out.Members, NormalizeDN(v))
	}
	for _, a := range c.cfg.Groups.MemberUIDAttributes {
		out.Members = append(out.Members, values(out.Attributes, a)...)
	}
	out.Members = appendUnique(nil, out.Members...)
	return out, nil
}

func (c converter) common(e *goldap.Entry) (connectors.Entry, error) {
	attrs := attributes(e)
	id := values(attrs, c.cfg.IDAttribute)
	if len(id) == 0 || id[0] == "" {
		return connectors.Entry{}, fmt.Errorf("ldap: %q: %w %s", e.DN, ErrNoID, c.cfg.IDAttribute)
	}
	norm := NormalizeDN(e.DN)
	return connectors.Entry{
		ID:         id[0],
		Keys:       appendUnique(nil, e.DN, norm),
		Attributes: attrs,
	}, nil
}

// stripOptionalUID drops the "#'0101'B" optional uid of a uniqueMember (nameAndOptionalUID).
func stripOptionalUID(v string) string {
	if i := strings.LastIndex(v, "#'"); i > 0 && strings.HasSuffix(v, "'B") && v[i-1] != '\\' {
		return v[:i]
	}
	return v
}

func appendUnique(dst []string, vals ...string) []string {
	if len(dst)+len(vals) <= 8 {
		for _, v := range vals {
			if v != "" && !slices.Contains(dst, v) {
				dst = append(dst, v)
			}
		}
		return dst
	}
	seen := make(map[string]bool, len(dst)+len(vals))
	for _, v := range dst {
		seen[v] = true
	}
	for _, v := range vals {
		if v != "" && !seen[v] {
			seen[v] = true
			dst = append(dst, v)
		}
	}
	return dst
}
