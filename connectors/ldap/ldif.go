package ldap

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/go-ldap/ldif"

	"github.com/scimbridge/scimbridge/connectors"
)

// ldifSource reads an LDIF export (ldifde, ldapsearch) with the same flavours and conversion as
// the server source; base DNs, scopes and filters are applied in the client.
type ldifSource struct {
	cfg    Config
	conv   converter
	logger *slog.Logger
}

var _ connectors.Source = (*ldifSource)(nil)
var _ connectors.Checker = (*ldifSource)(nil)

// Close does nothing: the file is read and closed by each Read.
func (s *ldifSource) Close() error { return nil }

// Check reads the file and reports its counts.
func (s *ldifSource) Check(ctx context.Context) (connectors.CheckReport, error) {
	rep := connectors.CheckReport{Identity: s.cfg.LDIFFile, Details: map[string]string{
		"flavour": s.cfg.FlavourName, "vendor": "LDIF file",
	}}
	dir, err := s.Read(ctx)
	if err != nil {
		return rep, err
	}
	rep.Details["users"] = strconv.Itoa(len(dir.Users))
	rep.Details["groups"] = strconv.Itoa(len(dir.Groups))
	return rep, nil
}

// scopeMatcher says whether an entry is in one configured search (base, scope, filter).
type scopeMatcher struct {
	base   string // normalised
	scope  int
	filter *matcher
}

func newScopeMatcher(base, scope, filter string) (*scopeMatcher, error) {
	sc, err := parseScope(scope)
	if err != nil {
		return nil, err
	}
	m, err := compileMatcher(filter)
	if err != nil {
		return nil, err
	}
	return &scopeMatcher{base: NormalizeDN(base), scope: sc, filter: m}, nil
}

func (m *scopeMatcher) in(dn string, attrs map[string][]string) (bool, error) {
	n := NormalizeDN(dn)
	if m.base != "" {
		switch m.scope {
		case goldap.ScopeBaseObject:
			if n != m.base {
				return false, nil
			}
		case goldap.ScopeSingleLevel:
			_, parent, _ := strings.Cut(n, ",")
			if parent != m.base {
				return false, nil
			}
		default:
			if n != m.base && !strings.HasSuffix(n, ","+m.base) {
				return false, nil
			}
		}
	}
	return m.filter.match(attrs)
}

// Read parses the whole file; a parse error or an incomplete ranged attribute fails the read.
func (s *ldifSource) Read(ctx context.Context) (*connectors.Directory, error) {
	users, err := newScopeMatcher(s.cfg.Users.BaseDN, s.cfg.Users.Scope, s.cfg.Users.Filter)
	if err != nil {
		return nil, fmt.Errorf("ldap: users: %w", err)
	}
	groups, err := newScopeMatcher(s.cfg.Groups.BaseDN, s.cfg.Groups.Scope, s.cfg.Groups.Filter)
	if err != nil {
		return nil, fmt.Errorf("ldap: groups: %w", err)
	}
	raw, err := os.ReadFile(s.cfg.LDIFFile)
	if err != nil {
		return nil, fmt.Errorf("ldap: ldif_file: %w", err)
	}
	dir := &connectors.Directory{Users: []connectors.Entry{}, Groups: []connectors.Entry{}}
	var l ldif.LDIF
	for rec, err := range ldif.UnmarshalEntries(bytes.NewReader(cleanLDIF(raw)), &l) {
		if err != nil {
			return nil, fmt.Errorf("ldap: parse %s: %w", s.cfg.LDIFFile, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ldap: read %s: %w", s.cfg.LDIFFile, err)
		}
		e := rec.Entry
		if e == nil && rec.Add != nil {
			e = &goldap.Entry{DN: rec.Add.DN}
			for _, a := range rec.Add.Attributes {
				e.Attributes = append(e.Attributes, goldap.NewEntryAttribute(a.Type, a.Vals))
			}
		}
		if e == nil {
			continue // a change record other than add describes no entry
		}
		attrs := attributes(e)
		if ok, err := users.in(e.DN, attrs); err != nil {
			return nil, fmt.Errorf("ldap: users filter on %q: %w", e.DN, err)
		} else if ok {
			u, err := s.conv.user(e)
			if err != nil {
				return nil, err
			}
			dir.Users = append(dir.Users, u)
			continue
		}
		if ok, err := groups.in(e.DN, attrs); err != nil {
			return nil, fmt.Errorf("ldap: groups filter on %q: %w", e.DN, err)
		} else if ok {
			ranged, err := rangedValues(e)
			if err != nil {
				return nil, err
			}
			g, err := s.conv.group(e, ranged)
			if err != nil {
				return nil, err
			}
			dir.Groups = append(dir.Groups, g)
		}
	}
	sortDirectory(dir)
	s.logger.Info("ldap: read ldif file", "file", s.cfg.LDIFFile, "users", len(dir.Users), "groups", len(dir.Groups))
	return dir, nil
}

// rangedValues gathers "member;range=lo-hi" slices of an exported entry. They must cover the
// whole attribute (0 to "*"): an export that stopped at the first 1,500 values is incomplete.
func rangedValues(e *goldap.Entry) ([]string, error) {
	type slice struct {
		lo, hi int
		vals   []string
	}
	var parts []slice
	for _, a := range e.Attributes {
		if _, lo, hi, ok := parseRange(a.Name); ok {
			parts = append(parts, slice{lo, hi, a.Values})
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	slices.SortFunc(parts, func(a, b slice) int { return a.lo - b.lo })
	var out []string
	next := 0
	for _, s := range parts {
		if s.lo != next {
			break
		}
		out = append(out, s.vals...)
		if s.hi < 0 {
			return out, nil
		}
		next = s.hi + 1
	}
	return nil, fmt.Errorf("ldap: group %q: the export holds ranged member values up to %d but not the rest (export with a tool that follows ranges, such as ldifde): %w",
		e.DN, next-1, ErrIncomplete)
}

var (
	emptyValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9;.-]*::?\s*$`)
	resultLine = regexp.MustCompile(`^(search|result|ref|matchedDN|text):`)
	// rangeOption matches a ranged attribute description, which the LDIF parser rejects ('='
	// and '*' are not allowed in a name): cleanLDIF rewrites ";range=0-*" as ";range-0-end".
	rangeOption = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*);(?i:range)=(\d+)-(\d+|\*)(::?)`)
)

// cleanLDIF drops what ldapsearch adds around the entries (search/result trailers, referral
// records) and empty values, which the LDIF parser rejects.
func cleanLDIF(raw []byte) []byte {
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	var out bytes.Buffer
	for _, rec := range strings.Split(string(raw), "\n\n") {
		lines := strings.Split(rec, "\n")
		first := ""
		for _, l := range lines {
			if l != "" && !strings.HasPrefix(l, "#") {
				first = l
				break
			}
		}
		if first == "" || resultLine.MatchString(first) {
			continue
		}
		for i, l := range lines {
			if emptyValue.MatchString(l) && (i+1 == len(lines) || !strings.HasPrefix(lines[i+1], " ")) {
				continue
			}
			if m := rangeOption.FindStringSubmatchIndex(l); m != nil {
				hi := l[m[6]:m[7]]
				if hi == "*" {
					hi = "end"
				}
				l = l[m[2]:m[3]] + ";range-" + l[m[4]:m[5]] + "-" + hi + l[m[8]:]
			}
			out.WriteString(l)
			out.WriteByte('\n')
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}
