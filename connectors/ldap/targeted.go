package ldap

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
)

// idsPerSearch bounds the ids one targeted search asks for (the filter's size).
const idsPerSearch = 200

// scopeConfig is one configured search: users or groups.
type scopeConfig struct {
	what, base, scope, filter string
}

func (s *source) usersSearch() scopeConfig {
	return scopeConfig{"users", s.cfg.Users.BaseDN, s.cfg.Users.Scope, s.cfg.Users.Filter}
}

func (s *source) groupsSearch() scopeConfig {
	return scopeConfig{"groups", s.cfg.Groups.BaseDN, s.cfg.Groups.Scope, s.cfg.Groups.Filter}
}

// userAttrs lists what a read asks of each user.
func (s *source) userAttrs() []string {
	attrs := searchAttributes(s.cfg.Users.Attributes, append([]string{s.cfg.IDAttribute}, s.cfg.Users.KeyAttributes...)...)
	if s.cfg.Groups.Nested == NestedServer {
		attrs = searchAttributes(attrs, memberOfAttribute) // the users' direct groups, for inChainMembers
	}
	return attrs
}

// groupAttrs lists what a read asks of each group: on AD, the first range of each member
// attribute (the rest is fetched by fetchRange); with nested server, no member attribute.
func (s *source) groupAttrs() []string {
	ranged := s.cfg.FlavourName == FlavourActiveDirectory
	memberAttrs := s.cfg.Groups.MemberAttributes
	if s.cfg.Groups.Nested == NestedServer {
		memberAttrs = nil // the members come from the in-chain searches
	}
	attrs := append([]string{s.cfg.IDAttribute}, s.cfg.Groups.MemberUIDAttributes...)
	for _, m := range memberAttrs {
		if ranged {
			m += ";range=0-" + strconv.Itoa(rangeStep-1)
		}
		attrs = append(attrs, m)
	}
	return searchAttributes(s.cfg.Groups.Attributes, attrs...)
}

// idAssertion renders (idAttr=id) for a filter: objectGUID as its 16 escaped bytes, anything
// else escaped as text. ok is false for an objectGUID that is not a GUID.
func (s *source) idAssertion(id string) (string, bool) {
	if strings.EqualFold(s.cfg.IDAttribute, "objectGUID") {
		b, err := GUIDBytes(id)
		if err != nil {
			return "", false
		}
		var sb strings.Builder
		for _, x := range b {
			sb.WriteString(`\` + hex.EncodeToString([]byte{x}))
		}
		return "(" + s.cfg.IDAttribute + "=" + sb.String() + ")", true
	}
	return "(" + s.cfg.IDAttribute + "=" + goldap.EscapeFilter(id) + ")", true
}

// GUIDBytes parses a canonical objectGUID string back into its 16 bytes (GUIDString's inverse).
func GUIDBytes(s string) ([]byte, error) {
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 || len(s) != 36 {
		return nil, fmt.Errorf("ldap: %q is not a GUID", s)
	}
	b := make([]byte, 16)
	b[0], b[1], b[2], b[3] = raw[3], raw[2], raw[1], raw[0]
	b[4], b[5] = raw[5], raw[4]
	b[6], b[7] = raw[7], raw[6]
	copy(b[8:], raw[8:])
	return b, nil
}

// searchIDs searches one configured scope for the entries with the given ids (its base, scope
// and filter, and'ed with the ids), idsPerSearch ids a search.
func (s *source) searchIDs(ctx context.Context, page pager, sc scopeConfig, ids []string, attrs []string, each func(*goldap.Entry) error) error {
	for len(ids) > 0 {
		n := min(len(ids), idsPerSearch)
		var or strings.Builder
		for _, id := range ids[:n] {
			if a, ok := s.idAssertion(id); ok {
				or.WriteString(a)
			}
		}
		ids = ids[n:]
		if or.Len() == 0 {
			continue
		}
		filter := "(&" + sc.filter + "(|" + or.String() + "))"
		if err := s.search(ctx, page, sc.what+" by id", sc.base, sc.scope, filter, attrs, each); err != nil {
			return err
		}
	}
	return nil
}

// ReadEntries reads the users and groups with the given ids, each as a full Read gives it
// (attributes, and a group's members: all ranges of them on AD, or with nested server the
// users in its chain), over the source's one connection: a search for the users, one for the
// groups (idsPerSearch ids a search), then only what large or nested groups need. Ids not
// found in their scope are returned in missing. Any failure fails the whole read.
func (s *source) ReadEntries(ctx context.Context, userIDs, groupIDs []string) (*connectors.Directory, []string, error) {
	start := time.Now()
	dir, missing, err := s.readEntries(ctx, userIDs, groupIDs)
	if err != nil {
		_ = s.Close()
		return nil, nil, err
	}
	sortDirectory(dir)
	s.logger.Info("ldap: read entries", "users", len(dir.Users), "groups", len(dir.Groups), "missing", len(missing),
		"duration", time.Since(start).Round(time.Millisecond))
	return dir, missing, nil
}

func (s *source) readEntries(ctx context.Context, userIDs, groupIDs []string) (*connectors.Directory, []string, error) {
	dir := &connectors.Directory{Users: []connectors.Entry{}, Groups: []connectors.Entry{}}
	var missing []string
	if len(userIDs)+len(groupIDs) == 0 {
		return dir, nil, nil
	}
	conn, err := s.connect()
	if err != nil {
		return nil, nil, err
	}
	page := goPager(conn)
	found := map[string]bool{}
	if len(userIDs) > 0 {
		err := s.searchIDs(ctx, page, s.usersSearch(), userIDs, s.userAttrs(), func(e *goldap.Entry) error {
			if err := checkMemberOfRange(s.cfg, e); err != nil {
				return err
			}
			u, err := s.conv.user(e)
			if err != nil {
				return err
			}
			found[u.ID] = true
			dir.Users = append(dir.Users, u)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		for _, id := range userIDs {
			if !found[id] {
				missing = append(missing, id)
			}
		}
	}
	if len(groupIDs) == 0 {
		return dir, missing, nil
	}
	var entries []*goldap.Entry
	err = s.searchIDs(ctx, page, s.groupsSearch(), groupIDs, s.groupAttrs(), func(e *goldap.Entry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	clear(found)
	for _, e := range entries {
		var members []string
		if s.cfg.Groups.Nested == NestedServer {
			members, err = s.chainUsers(ctx, page, e)
		} else {
			members, err = s.rangedMembers(ctx, conn, e)
		}
		if err != nil {
			return nil, nil, err
		}
		g, err := s.conv.group(e, members)
		if err != nil {
			return nil, nil, err
		}
		found[g.ID] = true
		dir.Groups = append(dir.Groups, g)
	}
	for _, id := range groupIDs {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	return dir, missing, nil
}

// rangedMembers returns the member values of a group entry that came in ranges, the first
// slice (in the entry) and the rest, fetched (nil when nothing was ranged: the converter then
// takes the member attributes as they are).
func (s *source) rangedMembers(ctx context.Context, conn *goldap.Conn, e *goldap.Entry) ([]string, error) {
	var members []string
	for _, a := range e.Attributes {
		name, lo, hi, ok := parseRange(a.Name)
		if !ok {
			continue
		}
		if lo != 0 {
			return nil, fmt.Errorf("ldap: group %q: range %q does not start at 0: %w", e.DN, a.Name, ErrIncomplete)
		}
		members = append(members, a.Values...)
		if hi >= 0 {
			rest, err := s.fetchRange(ctx, conn, e.DN, name, hi+1)
			if err != nil {
				return nil, err
			}
			members = append(members, rest...)
		}
	}
	return members, nil
}

// chainUsers returns, for nested server, the DNs of the users in scope that are members of the
// group directly or through nested groups, as a full Read names them: the groups nested in it
// (one in-chain search over groups), then the users whose memberOf names the group or one of
// those (one search). A group the scope leaves out gets none, as in a full Read.
func (s *source) chainUsers(ctx context.Context, page pager, e *goldap.Entry) ([]string, error) {
	if s.groupScope != nil {
		if g, err := s.conv.group(e, nil); err == nil && !s.groupScope(&g) {
			return nil, nil
		}
	}
	nested, err := s.nestedGroups(ctx, page, e.DN)
	if err != nil {
		return nil, err
	}
	var or strings.Builder
	for _, dn := range append([]string{e.DN}, nested...) {
		or.WriteString("(" + memberOfAttribute + "=" + goldap.EscapeFilter(dn) + ")")
	}
	var users []string
	filter := "(&" + s.cfg.Users.Filter + "(|" + or.String() + "))"
	err = s.search(ctx, page, "users in chain", s.cfg.Users.BaseDN, s.cfg.Users.Scope, filter, []string{"1.1"}, func(u *goldap.Entry) error {
		users = append(users, u.DN)
		return nil
	})
	return users, err
}

// checkMemberOfRange fails a user whose memberOf came back in ranges under nested server (its
// groups came back in slices, and a missing slice would drop memberships).
func checkMemberOfRange(cfg Config, e *goldap.Entry) error {
	if cfg.Groups.Nested != NestedServer {
		return nil
	}
	for _, a := range e.Attributes {
		if n, _, _, ok := parseRange(a.Name); ok && strings.EqualFold(n, memberOfAttribute) {
			return fmt.Errorf("ldap: user %q: %s came back in ranges (%s); use groups.nested client: %w", e.DN, memberOfAttribute, a.Name, ErrIncomplete)
		}
	}
	return nil
}
