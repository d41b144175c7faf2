package ldap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// ErrUnsupportedFilter is returned (wrapped) for a filter the LDIF source cannot evaluate in
// the client, such as AD's in-chain rule.
var ErrUnsupportedFilter = errors.New("filter not supported offline")

// AD's bitwise matching rules.
const (
	ruleBitAnd = "1.2.840.113556.1.4.803"
	ruleBitOr  = "1.2.840.113556.1.4.804"
)

// matcher evaluates a compiled LDAP filter against rendered attributes, the way a directory
// would for the common cases: case-insensitive equality, substrings, ordering, presence, AD's
// objectCategory shorthand and bitwise rules. It serves the LDIF source.
type matcher struct {
	root *ber.Packet
}

func compileMatcher(filter string) (*matcher, error) {
	p, err := goldap.CompileFilter(filter)
	if err != nil {
		return nil, fmt.Errorf("ldap: filter %q: %w", filter, err)
	}
	m := &matcher{root: p}
	// Evaluate every part once on nothing, so that unsupported parts fail at Open, not per entry.
	if err := checkFilter(m, p); err != nil {
		return nil, fmt.Errorf("ldap: filter %q: %w", filter, err)
	}
	return m, nil
}

func checkFilter(m *matcher, p *ber.Packet) error {
	if p.Tag == goldap.FilterAnd || p.Tag == goldap.FilterOr || p.Tag == goldap.FilterNot {
		for _, c := range p.Children {
			if err := checkFilter(m, c); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := m.eval(p, map[string][]string{})
	return err
}

func (m *matcher) match(attrs map[string][]string) (bool, error) { return m.eval(m.root, attrs) }

func (m *matcher) eval(p *ber.Packet, attrs map[string][]string) (bool, error) {
	switch p.Tag {
	case goldap.FilterAnd, goldap.FilterOr:
		or := p.Tag == goldap.FilterOr
		for _, c := range p.Children {
			ok, err := m.eval(c, attrs)
			if err != nil {
				return false, err
			}
			if ok == or {
				return or, nil
			}
		}
		return !or, nil
	case goldap.FilterNot:
		if len(p.Children) != 1 {
			return false, fmt.Errorf("malformed not: %w", ErrUnsupportedFilter)
		}
		ok, err := m.eval(p.Children[0], attrs)
		return !ok, err
	case goldap.FilterPresent:
		return len(values(attrs, p.Data.String())) > 0, nil
	case goldap.FilterEqualityMatch, goldap.FilterApproxMatch, goldap.FilterGreaterOrEqual, goldap.FilterLessOrEqual:
		if len(p.Children) != 2 {
			return false, fmt.Errorf("malformed comparison: %w", ErrUnsupportedFilter)
		}
		attr, want := packetString(p.Children[0]), packetString(p.Children[1])
		for _, v := range values(attrs, attr) {
			if compare(p.Tag, attr, v, want) {
				return true, nil
			}
		}
		return false, nil
	case goldap.FilterSubstrings:
		if len(p.Children) != 2 {
			return false, fmt.Errorf("malformed substring filter: %w", ErrUnsupportedFilter)
		}
		attr := packetString(p.Children[0])
		for _, v := range values(attrs, attr) {
			if substringMatch(strings.ToLower(v), p.Children[1].Children) {
				return true, nil
			}
		}
		return false, nil
	case goldap.FilterExtensibleMatch:
		var rule, attr, want string
		for _, c := range p.Children {
			switch c.Tag {
			case goldap.MatchingRuleAssertionMatchingRule:
				rule = packetString(c)
			case goldap.MatchingRuleAssertionType:
				attr = packetString(c)
			case goldap.MatchingRuleAssertionMatchValue:
				want = packetString(c)
			}
		}
		if rule != ruleBitAnd && rule != ruleBitOr {
			return false, fmt.Errorf("matching rule %q: %w", rule, ErrUnsupportedFilter)
		}
		mask, err := strconv.ParseInt(want, 10, 64)
		if err != nil && want != "" {
			return false, fmt.Errorf("bitwise rule value %q: %w", want, err)
		}
		for _, v := range values(attrs, attr) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			if (rule == ruleBitAnd && n&mask == mask) || (rule == ruleBitOr && n&mask != 0) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("filter tag %d: %w", p.Tag, ErrUnsupportedFilter)
}

func packetString(p *ber.Packet) string {
	if p.Data != nil && p.Data.Len() > 0 {
		return p.Data.String()
	}
	if s, ok := p.Value.(string); ok {
		return s
	}
	return ""
}

func compare(tag ber.Tag, attr, have, want string) bool {
	// AD lets (objectCategory=person) stand for the full DN of the Person class.
	if strings.EqualFold(attr, "objectCategory") && !strings.Contains(want, "=") {
		if dn, err := goldap.ParseDN(have); err == nil && len(dn.RDNs) > 0 && len(dn.RDNs[0].Attributes) > 0 {
			have = dn.RDNs[0].Attributes[0].Value
		}
	}
	if tag == goldap.FilterGreaterOrEqual || tag == goldap.FilterLessOrEqual {
		c := strings.Compare(strings.ToLower(have), strings.ToLower(want))
		hn, herr := strconv.ParseInt(have, 10, 64)
		wn, werr := strconv.ParseInt(want, 10, 64)
		if herr == nil && werr == nil {
			c = 0
			if hn < wn {
				c = -1
			} else if hn > wn {
				c = 1
			}
		}
		if tag == goldap.FilterGreaterOrEqual {
			return c >= 0
		}
		return c <= 0
	}
	if strings.EqualFold(have, want) {
		return true
	}
	// DN-valued attributes (member, manager) compare in normalised form.
	return strings.Contains(want, "=") && NormalizeDN(have) == NormalizeDN(want)
}

func substringMatch(v string, parts []*ber.Packet) bool {
	for i, p := range parts {
		s := strings.ToLower(packetString(p))
		switch p.Tag {
		case goldap.FilterSubstringsInitial:
			if i != 0 || !strings.HasPrefix(v, s) {
				return false
			}
			v = v[len(s):]
		case goldap.FilterSubstringsAny:
			j := strings.Index(v, s)
			if j < 0 {
				return false
			}
			v = v[j+len(s):]
		case goldap.FilterSubstringsFinal:
			if !strings.HasSuffix(v, s) {
				return false
			}
			v = ""
		}
	}
	return true
}

// filterAttributes lists the attribute types a compiled filter tests.
func filterAttributes(p *ber.Packet) []string {
	switch p.Tag {
	case goldap.FilterAnd, goldap.FilterOr, goldap.FilterNot:
		var out []string
		for _, c := range p.Children {
			out = append(out, filterAttributes(c)...)
		}
		return out
	case goldap.FilterPresent:
		return []string{packetString(p)}
	case goldap.FilterExtensibleMatch:
		for _, c := range p.Children {
			if c.Tag == goldap.MatchingRuleAssertionType {
				return []string{packetString(c)}
			}
		}
		return nil
	}
	if len(p.Children) > 0 {
		return []string{packetString(p.Children[0])}
	}
	return nil
}
