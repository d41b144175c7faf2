package ldap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
)

// rangeStep is the size of each member range requested (Windows' MaxValRange).
const rangeStep = 1500

// inChainRule is AD's LDAP_MATCHING_RULE_IN_CHAIN.
const inChainRule = "1.2.840.113556.1.4.1941"

// ErrIncomplete is returned (wrapped) when a read cannot be shown to be complete, such as a
// ranged member attribute that never reaches its end.
var ErrIncomplete = errors.New("incomplete read")

// source reads a directory server.
type source struct {
	cfg    Config
	conv   converter
	dialer *dialer
	logger *slog.Logger
	mu     sync.Mutex // guards conn
	conn   *goldap.Conn
	// afterPage, when set (by tests), runs after each page of each search.
	afterPage func(what string, page int)
	// goLDAPOnly, set by tests, pages with go-ldap even where the raw decoder would serve.
	goLDAPOnly bool
	// groupScope, when set (SetGroupScope), says which groups may be in scope.
	groupScope func(*connectors.Entry) bool
	// inChain bounds the in-chain searches run at once (inChainConcurrency; tests change it).
	inChain int
}

var (
	_ connectors.Source      = (*source)(nil)
	_ connectors.Checker     = (*source)(nil)
	_ connectors.GroupScoped = (*source)(nil)
)

// Open validates the configuration and returns a source for it: a server source for url, an
// LDIF source for ldif_file. A server source connects lazily, on the first Read or Check, and
// again after any failed read.
func (c Config) Open(logger *slog.Logger) (connectors.Source, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c = c.withDefaults()
	logger = logger.With("source", "ldap", "flavour", c.FlavourName)
	if c.LDIFFile != "" {
		return &ldifSource{cfg: c, conv: converter{cfg: c}, logger: logger}, nil
	}
	d, err := newDialer(c, logger)
	if err != nil {
		return nil, err
	}
	return &source{cfg: c, conv: converter{cfg: c}, dialer: d, logger: logger, inChain: inChainConcurrency}, nil
}

// Close closes the connection, if one is open.
func (s *source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if err != nil {
		return fmt.Errorf("ldap: close: %w", err)
	}
	return nil
}

// connect returns the open connection, dialling and binding again when there is none or the
// last one dropped.
func (s *source) connect() (*goldap.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !s.conn.IsClosing() {
		return s.conn, nil
	}
	if s.conn != nil {
		s.logger.Info("ldap: connection dropped, redialling", "url", s.cfg.URL)
		_ = s.conn.Close()
		s.conn = nil
	}
	conn, err := s.dialer.dial()
	if err != nil {
		return nil, err
	}
	s.conn = conn
	return conn, nil
}

// Read reads every user and group in scope. Any failure returns an error and no Directory, and
// drops the connection so that the next Read starts afresh.
func (s *source) Read(ctx context.Context) (*connectors.Directory, error) {
	start := time.Now()
	dir, err := s.read(ctx)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	sortDirectory(dir)
	s.logger.Info("ldap: read directory", "users", len(dir.Users), "groups", len(dir.Groups),
		"duration", time.Since(start).Round(time.Millisecond))
	return dir, nil
}

func (s *source) read(ctx context.Context) (*connectors.Directory, error) {
	dir := &connectors.Directory{Users: []connectors.Entry{}, Groups: []connectors.Entry{}}

	gattrs := s.groupAttrs()
	type pending struct {
		entry *goldap.Entry
		slice []string
		next  map[string]int // member attribute -> next range start, for unfinished ranges
	}
	var groups []pending
	readGroups := func(ctx context.Context, pager pager) error {
		return s.search(ctx, pager, "groups", s.cfg.Groups.BaseDN, s.cfg.Groups.Scope, s.cfg.Groups.Filter, gattrs, func(e *goldap.Entry) error {
			p := pending{entry: e}
			for _, a := range e.Attributes {
				name, lo, hi, ok := parseRange(a.Name)
				if !ok {
					continue
				}
				if lo != 0 {
					return fmt.Errorf("ldap: group %q: range %q does not start at 0: %w", e.DN, a.Name, ErrIncomplete)
				}
				p.slice = append(p.slice, a.Values...)
				if hi >= 0 {
					if p.next == nil {
						p.next = map[string]int{}
					}
					p.next[name] = hi + 1
				}
			}
			groups = append(groups, p)
			return nil
		})
	}

	// Users and groups are read at once, over two connections of their own.
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var gerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		pager, closer, err := s.pagedConn()
		if err != nil {
			gerr = err
			cancel()
			return
		}
		defer closer()
		if gerr = readGroups(gctx, pager); gerr != nil {
			cancel()
		}
	}()
	upager, closer, uerr := s.pagedConn()
	if uerr == nil {
		defer closer()
	}
	uattrs := s.userAttrs()
	if uerr == nil {
		uerr = s.search(gctx, upager, "users", s.cfg.Users.BaseDN, s.cfg.Users.Scope, s.cfg.Users.Filter, uattrs, func(e *goldap.Entry) error {
			if err := checkMemberOfRange(s.cfg, e); err != nil {
				return err
			}
			u, err := s.conv.user(e)
			if err != nil {
				return err
			}
			dir.Users = append(dir.Users, u)
			return nil
		})
	}
	if uerr != nil {
		cancel()
	}
	<-done
	switch {
	case uerr != nil && gerr != nil && ctx.Err() == nil && errors.Is(uerr, context.Canceled):
		return nil, gerr // the users search was cancelled because the groups search failed
	case uerr != nil:
		return nil, uerr
	case gerr != nil:
		return nil, gerr
	}

	if s.cfg.Groups.Nested == NestedServer {
		entries := make([]*goldap.Entry, len(groups))
		for i, p := range groups {
			entries[i] = p.entry
		}
		members, err := s.inChainMembers(ctx, entries, dir.Users)
		if err != nil {
			return nil, err
		}
		for i, p := range groups {
			g, err := s.conv.group(p.entry, members[i])
			if err != nil {
				return nil, err
			}
			dir.Groups = append(dir.Groups, g)
		}
		return dir, nil
	}

	var conn *goldap.Conn // go-ldap, for range retrieval, when needed
	for _, p := range groups {
		var err error
		if conn == nil && len(p.next) > 0 {
			if conn, err = s.connect(); err != nil {
				return nil, err
			}
		}
		members := p.slice
		for name, from := range p.next {
			rest, err := s.fetchRange(ctx, conn, p.entry.DN, name, from)
			if err != nil {
				return nil, err
			}
			members = append(members, rest...)
		}
		g, err := s.conv.group(p.entry, members)
		if err != nil {
			return nil, err
		}
		dir.Groups = append(dir.Groups, g)
	}
	return dir, nil
}

// sortDirectory orders entries by ID and members by value, so that two reads of an unchanged
// directory are identical whatever order the server returned.
func sortDirectory(d *connectors.Directory) {
	for _, es := range [][]connectors.Entry{d.Users, d.Groups} {
		slices.SortFunc(es, func(a, b connectors.Entry) int { return strings.Compare(a.ID, b.ID) })
		for i := range es {
			slices.Sort(es[i].Members)
		}
	}
}

// parseRange splits "member;range=1500-2999" into member, 1500, 2999; hi is -1 for "*". It
// also reads the form cleanLDIF rewrites ranges to, "member;range-1500-end".
func parseRange(desc string) (name string, lo, hi int, ok bool) {
	i := strings.Index(strings.ToLower(desc), ";range=")
	if i < 0 {
		if i = strings.Index(strings.ToLower(desc), ";range-"); i < 0 {
			return "", 0, 0, false
		}
	}
	name = desc[:i]
	l, h, found := strings.Cut(desc[i+len(";range="):], "-")
	if !found {
		return "", 0, 0, false
	}
	var err error
	if lo, err = strconv.Atoi(l); err != nil {
		return "", 0, 0, false
	}
	if h == "*" || h == "end" {
		return name, lo, -1, true
	}
	if hi, err = strconv.Atoi(h); err != nil || hi < lo {
		return "", 0, 0, false
	}
	return name, lo, hi, true
}

// fetchRange reads a ranged attribute of one entry from "from" to its end, slice by slice,
// following the high bound the server returns (it may return fewer values than asked).
func (s *source) fetchRange(ctx context.Context, conn *goldap.Conn, dn, attr string, from int) ([]string, error) {
	var out []string
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ldap: range of %s of %q: %w", attr, dn, err)
		}
		want := fmt.Sprintf("%s;range=%d-%d", attr, from, from+rangeStep-1)
		req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{want}, nil)
		res, err := conn.Search(req)
		if err != nil {
			return nil, fmt.Errorf("ldap: read %s of %q: %w", want, dn, err)
		}
		if len(res.Entries) != 1 {
			return nil, fmt.Errorf("ldap: read %s of %q: %d entries returned: %w", want, dn, len(res.Entries), ErrIncomplete)
		}
		var got bool
		for _, a := range res.Entries[0].Attributes {
			name, lo, hi, ok := parseRange(a.Name)
			if !ok || !strings.EqualFold(name, attr) {
				continue
			}
			if lo != from {
				return nil, fmt.Errorf("ldap: read %s of %q: server returned %s: %w", want, dn, a.Name, ErrIncomplete)
			}
			got = true
			out = append(out, a.Values...)
			if hi < 0 {
				return out, nil
			}
			from = hi + 1
		}
		if !got {
			return nil, fmt.Errorf("ldap: read %s of %q: no ranged attribute returned: %w", want, dn, ErrIncomplete)
		}
	}
}

// inChainConcurrency bounds the in-chain searches of a read that run at once, each over a
// connection of its own.
const inChainConcurrency = 4

// memberOfAttribute lists a user's direct groups (AD keeps it for every member attribute).
const memberOfAttribute = "memberOf"

// SetGroupScope implements connectors.GroupScoped: with nested server, the members of a group
// for which inScope is false are not worked out (the group comes back without members).
func (s *source) SetGroupScope(inScope func(*connectors.Entry) bool) { s.groupScope = inScope }

// inChainMembers returns, for each group entry that may be in scope, the DNs of the users read
// that are its members directly or through nested groups; groups out of scope get nil. AD is
// asked, with the in-chain rule, for the groups nested in each group in scope, wherever they are
// in the domain (one search over groups, which are few, per group in scope, up to
// inChainConcurrency at once); a user is a member when one of its direct groups (memberOf, read
// with the users) is the group or one of those. Searching the users once per group instead made
// the DC evaluate the rule over every user for every group. Any failed search fails the read.
func (s *source) inChainMembers(ctx context.Context, groups []*goldap.Entry, users []connectors.Entry) ([][]string, error) {
	start := time.Now()
	var todo []int
	for i, e := range groups {
		if s.groupScope != nil {
			g, err := s.conv.group(e, nil)
			if err == nil && !s.groupScope(&g) {
				continue // an entry that cannot be converted fails the read later
			}
		}
		todo = append(todo, i)
	}
	nested := make([][]string, len(groups))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	workers := min(max(1, s.inChain), len(todo))
	for range workers {
		wg.Go(func() {
			page, closer, err := s.pagedConn()
			if err != nil {
				fail(err)
				return
			}
			defer closer()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(todo) || ctx.Err() != nil {
					return
				}
				i := todo[k]
				dns, err := s.nestedGroups(ctx, page, groups[i].DN)
				if err != nil {
					fail(err)
					return
				}
				nested[i] = dns
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil && len(todo) > 0 {
		return nil, fmt.Errorf("ldap: in-chain group searches: %w", err)
	}

	// Each group in scope, and each group nested in it, leads to it.
	leadsTo := map[string][]int{}
	for _, i := range todo {
		for _, dn := range append([]string{groups[i].DN}, nested[i]...) {
			k := NormalizeDN(dn)
			if l := leadsTo[k]; len(l) == 0 || l[len(l)-1] != i {
				leadsTo[k] = append(l, i)
			}
		}
	}
	out := make([][]string, len(groups))
	last := make([]int, len(groups)) // 1 + the index of the last user added to each group
	for u := range users {
		for _, dn := range users[u].Values(memberOfAttribute) {
			for _, i := range leadsTo[NormalizeDN(dn)] {
				if last[i] != u+1 {
					last[i] = u + 1
					out[i] = append(out[i], users[u].Keys[0]) // the user's DN as the server spells it
				}
			}
		}
	}
	s.logger.Info("ldap: in-chain nested-group searches", "searches", len(todo), "groups_out_of_scope", len(groups)-len(todo),
		"concurrency", workers, "duration", time.Since(start).Round(time.Millisecond))
	return out, nil
}

// nestedGroups asks AD for the DNs of every group nested in the group, at any depth, in the
// group's domain.
func (s *source) nestedGroups(ctx context.Context, page pager, groupDN string) ([]string, error) {
	filter := fmt.Sprintf("(&(objectCategory=group)(memberOf:%s:=%s))", inChainRule, goldap.EscapeFilter(groupDN))
	var dns []string
	err := s.search(ctx, page, "nested groups", domainRoot(groupDN), "sub", filter, []string{"1.1"}, func(e *goldap.Entry) error {
		dns = append(dns, e.DN)
		return nil
	})
	return dns, err
}

// domainRoot returns the domain part of a DN: its trailing DC= components (the DN itself when it
// has none or does not parse).
func domainRoot(dn string) string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return dn
	}
	i := len(parsed.RDNs)
	for i > 0 {
		r := parsed.RDNs[i-1]
		if len(r.Attributes) != 1 || !strings.EqualFold(r.Attributes[0].Type, "dc") {
			break
		}
		i--
	}
	if i == len(parsed.RDNs) {
		return dn
	}
	parts := make([]string, 0, len(parsed.RDNs)-i)
	for _, r := range parsed.RDNs[i:] {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ",")
}

// pager runs one page of a paged search, streaming its entries to each, and returns the
// server's cookie (empty after the last page) and the number of referrals skipped.
type pager func(ctx context.Context, req *goldap.SearchRequest, each func(*goldap.Entry) error) (cookie []byte, referrals int, err error)

// pagedConn opens a connection of its own for one paged search: the raw decoder for simple
// and anonymous binds, go-ldap for Kerberos.
func (s *source) pagedConn() (pager, func(), error) {
	if s.cfg.Kerberos != nil || s.goLDAPOnly {
		conn, err := s.dialer.dial()
		if err != nil {
			return nil, nil, err
		}
		return goPager(conn), func() { _ = conn.Close() }, nil
	}
	rc, err := s.dialer.dialRaw()
	if err != nil {
		return nil, nil, err
	}
	return rc.page, func() { _ = rc.Close() }, nil
}

// goPager pages with go-ldap's SearchAsync.
func goPager(conn *goldap.Conn) pager {
	return func(ctx context.Context, req *goldap.SearchRequest, each func(*goldap.Entry) error) ([]byte, int, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		resp := conn.SearchAsync(ctx, req, 256)
		var cookie []byte
		var done bool
		var referrals int
		for resp.Next() {
			if e := resp.Entry(); e != nil {
				if err := each(e); err != nil {
					return nil, referrals, err
				}
				continue
			}
			if resp.Referral() != "" {
				referrals++
				continue
			}
			if c, ok := goldap.FindControl(resp.Controls(), goldap.ControlTypePaging).(*goldap.ControlPaging); ok {
				cookie, done = c.Cookie, true
			}
		}
		if err := resp.Err(); err != nil {
			return nil, referrals, err
		}
		if err := ctx.Err(); err != nil {
			return nil, referrals, err
		}
		if !done && conn.IsClosing() {
			// The result channel closes quietly when the connection drops between messages.
			return nil, referrals, fmt.Errorf("connection closed: %w", ErrIncomplete)
		}
		return cookie, referrals, nil
	}
}

// search runs one paged search, page by page, carrying the cookie. Referrals (continuation
// references from an AD domain root) are skipped; a referral result, a server limit, a timeout,
// a dropped connection or a cancelled context is an error.
func (s *source) search(ctx context.Context, page pager, what, base, scope, filter string, attrs []string, each func(*goldap.Entry) error) error {
	return s.searchWith(ctx, page, what, base, scope, filter, attrs, nil, each)
}

// searchWith is search with more request controls (such as AD's show-deleted).
func (s *source) searchWith(ctx context.Context, page pager, what, base, scope, filter string, attrs []string, controls []goldap.Control, each func(*goldap.Entry) error) error {
	sc, err := parseScope(scope)
	if err != nil {
		return fmt.Errorf("ldap: search %s: %w", what, err)
	}
	paging := goldap.NewControlPaging(uint32(s.cfg.PageSize))
	req := goldap.NewSearchRequest(base, sc, goldap.NeverDerefAliases, 0, 0, false, filter, attrs,
		append([]goldap.Control{paging}, controls...))
	var entries, referrals, pages int
	count := func(e *goldap.Entry) error {
		entries++
		return each(e)
	}
	for {
		pages++
		cookie, refs, err := page(ctx, req, count)
		referrals += refs
		if err != nil {
			return fmt.Errorf("ldap: search %s under %q (page %d, %d entries read): %w", what, base, pages, entries, err)
		}
		if s.afterPage != nil {
			s.afterPage(what, pages)
		}
		if len(cookie) == 0 {
			break
		}
		paging.SetCookie(cookie)
	}
	s.logger.Debug("ldap: searched", "what", what, "base", base, "entries", entries, "pages", pages, "referrals_skipped", referrals)
	return nil
}
