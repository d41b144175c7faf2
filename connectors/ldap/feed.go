package ldap

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
)

// Feed modes accepted in FeedConfig.Mode.
const (
	// FeedAuto picks DirSync (falling back to uSNChanged polling when the DC refuses it) on
	// Active Directory, syncrepl (falling back to modifyTimestamp polling when the server has no
	// syncprov) elsewhere.
	FeedAuto = "auto"
	// FeedDirSync polls AD with the DirSync control.
	FeedDirSync = "dirsync"
	// FeedUSN polls AD for uSNChanged above the last highestCommittedUSN of one DC.
	FeedUSN = "usn"
	// FeedSyncrepl holds an RFC 4533 refreshAndPersist search open (OpenLDAP syncprov).
	FeedSyncrepl = "syncrepl"
	// FeedTimestamp polls for modifyTimestamp at or after the last one seen.
	FeedTimestamp = "timestamp"
	// FeedOff turns the change feed off: only scheduled full reads.
	FeedOff = "off"
)

// DefaultPollInterval is how often a polling feed asks the server for changes.
const DefaultPollInterval = 15 * time.Second

// FeedConfig configures the source's change feed.
type FeedConfig struct {
	// Mode is auto (default), dirsync, usn, syncrepl, timestamp or off.
	Mode string `yaml:"mode"`
	// PollInterval is how often the dirsync, usn and timestamp feeds poll (default 15s).
	PollInterval time.Duration `yaml:"poll_interval"`
}

func (c FeedConfig) validate(flavour, idAttr string) []error {
	var errs []error
	switch c.Mode {
	case FeedAuto, FeedOff:
	case FeedDirSync, FeedUSN:
		if flavour != FlavourActiveDirectory {
			errs = append(errs, fmt.Errorf("ldap: feed.mode %s needs flavour active_directory", c.Mode))
		}
		if c.Mode == FeedDirSync && !strings.EqualFold(idAttr, "objectGUID") {
			errs = append(errs, fmt.Errorf("ldap: feed.mode dirsync needs id_attribute objectGUID (DirSync returns only changed attributes and the GUID), not %q", idAttr))
		}
	case FeedSyncrepl, FeedTimestamp:
		if flavour == FlavourActiveDirectory {
			errs = append(errs, fmt.Errorf("ldap: feed.mode %s is for OpenLDAP; use dirsync or usn on active_directory", c.Mode))
		}
		if c.Mode == FeedSyncrepl && !strings.EqualFold(idAttr, "entryUUID") {
			errs = append(errs, fmt.Errorf("ldap: feed.mode syncrepl needs id_attribute entryUUID (syncrepl names entries by it), not %q", idAttr))
		}
	default:
		errs = append(errs, fmt.Errorf("ldap: feed.mode %q is not one of auto, dirsync, usn, syncrepl, timestamp, off", c.Mode))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("ldap: feed.poll_interval %v is negative", c.PollInterval))
	}
	return errs
}

var (
	_ connectors.FeedSource     = (*source)(nil)
	_ connectors.TargetedReader = (*source)(nil)
)

// feed is the change feed of a server source. Its connections are its own.
type feed struct {
	s      *source
	mode   string
	fp     string // fingerprint of the scope, carried in cursors
	logger *slog.Logger

	mu     sync.Mutex
	closed bool
	main   *goldap.Conn // the polling or persistent search
	aux    *goldap.Conn // scope checks of changed entries

	// polls counts polls (and syncrepl searches) started; pollHook, set by tests, runs at the
	// start of each.
	polls    atomic.Int64
	pollHook func(n int64)
}

// Feed opens the change feed the configuration selects. In auto mode it asks the server
// which one it can serve; a feed the server cannot give is an error naming what is missing.
func (s *source) Feed(ctx context.Context) (connectors.Feed, error) {
	f := &feed{s: s, mode: s.cfg.Feed.Mode, fp: s.scopeFingerprint()}
	if f.mode == FeedOff {
		return nil, errors.New("ldap: the change feed is off (source.ldap.feed.mode off)")
	}
	conn, err := s.dialer.dial()
	if err != nil {
		return nil, err
	}
	f.main = conn
	ad := s.cfg.FlavourName == FlavourActiveDirectory
	switch {
	case f.mode == FeedAuto && ad && !strings.EqualFold(s.cfg.IDAttribute, "objectGUID"):
		f.mode = FeedUSN
	case f.mode == FeedAuto && ad:
		f.mode = FeedDirSync
		if _, err := f.dirSyncProbe(); err != nil {
			if !refused(err) {
				_ = f.Close()
				return nil, err
			}
			s.logger.Warn("ldap: the DC refuses DirSync; polling uSNChanged instead (needs no special right; sees deletions only with the right to list Deleted Objects)",
				"error", err.Error())
			f.mode = FeedUSN
		}
	case f.mode == FeedAuto:
		f.mode = FeedTimestamp
		if strings.EqualFold(s.cfg.IDAttribute, "entryUUID") {
			if _, err := f.syncreplProbe(ctx); err == nil {
				f.mode = FeedSyncrepl
			} else if !refused(err) {
				_ = f.Close()
				return nil, err
			} else {
				s.logger.Warn("ldap: the server does not serve syncrepl (no syncprov overlay?); polling modifyTimestamp instead, deletions are found by the periodic full read",
					"error", err.Error())
			}
		}
	case f.mode == FeedDirSync:
		if _, err := f.dirSyncProbe(); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("ldap: feed.mode dirsync: the DC refuses DirSync (the bind needs read access to the objects, or the Replicating Directory Changes right): %w", err)
		}
	case f.mode == FeedSyncrepl:
		if _, err := f.syncreplProbe(ctx); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("ldap: feed.mode syncrepl: the server refuses a sync request (load the syncprov overlay on the database): %w", err)
		}
	}
	if f.mode == FeedSyncrepl || f.mode == FeedTimestamp {
		if _, err := f.commonBase(); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	f.logger = s.logger.With("feed", f.mode)
	f.logger.Info("ldap: change feed opened", "poll_interval", s.cfg.Feed.PollInterval)
	return f, nil
}

// refused reports whether err is the server declining a control or an operation (rather than
// a network failure).
func refused(err error) bool {
	return goldap.IsErrorAnyOf(err, goldap.LDAPResultUnavailableCriticalExtension, goldap.LDAPResultUnwillingToPerform,
		goldap.LDAPResultInsufficientAccessRights, goldap.LDAPResultProtocolError, goldap.LDAPResultNoSuchObject,
		goldap.LDAPResultOperationsError)
}

// Mode reports the mode the feed runs in (auto resolved).
func (f *feed) Mode() string { return f.mode }

// Close closes the feed's connections; a Watch still running then ends.
func (f *feed) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return f.closeConns()
}

// closeConns closes the connections; the next conns dials again.
func (f *feed) closeConns() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range []**goldap.Conn{&f.main, &f.aux} {
		if *c != nil {
			_ = (*c).Close()
			*c = nil
		}
	}
	return nil
}

// conns returns the feed's connections, dialling again those that dropped.
func (f *feed) conns() (main, aux *goldap.Conn, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, nil, errFeedClosed
	}
	for _, c := range []**goldap.Conn{&f.main, &f.aux} {
		if *c != nil && (*c).IsClosing() {
			_ = (*c).Close()
			*c = nil
		}
		if *c == nil {
			if *c, err = f.s.dialer.dial(); err != nil {
				return nil, nil, err
			}
		}
	}
	return f.main, f.aux, nil
}

// Retries of a feed that failed (a dropped connection, a server restart): up to maxRetries in a
// row, waiting retryBackoff, doubled each time; a watch that ran retryReset resets the count.
var (
	maxRetries   = 5
	retryBackoff = time.Second
	retryReset   = time.Minute
)

// errFeedClosed ends a Watch whose feed was closed.
var errFeedClosed = errors.New("ldap: change feed closed")

// callbackError marks an error returned by Watch's fn: it stops Watch at once.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
func (e callbackError) Unwrap() error { return e.err }

// Watch delivers the feed's batches to fn until ctx ends, fn fails, or the feed fails
// maxRetries times in a row. After a failure it dials again and resumes from the last cursor it
// delivered (a server that lost its place then says so, and the batch is Full).
func (f *feed) Watch(ctx context.Context, cursor string, fn func(connectors.ChangeBatch) error) error {
	deliver := func(b connectors.ChangeBatch) error {
		if err := fn(b); err != nil {
			return callbackError{err}
		}
		if b.Cursor != "" {
			cursor = b.Cursor
		}
		return nil
	}
	failures := 0
	for {
		start := time.Now()
		var err error
		switch f.mode {
		case FeedSyncrepl:
			err = f.watchSyncrepl(ctx, cursor, deliver)
		case FeedDirSync, FeedUSN:
			err = f.watchAD(ctx, cursor, deliver)
		case FeedTimestamp:
			err = f.watchTimestamp(ctx, cursor, deliver)
		default:
			return fmt.Errorf("ldap: feed mode %q cannot watch", f.mode)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var cb callbackError
		if errors.As(err, &cb) {
			return cb.err
		}
		if errors.Is(err, errFeedClosed) {
			return err
		}
		if time.Since(start) > retryReset {
			failures = 0
		}
		failures++
		if failures > maxRetries {
			return fmt.Errorf("ldap: change feed failed %d times in a row: %w", failures, err)
		}
		wait := retryBackoff << (failures - 1)
		f.logger.Warn("ldap: change feed failed; reconnecting", "error", err.Error(), "attempt", failures, "wait", wait)
		_ = f.closeConns()
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// startPoll counts a poll and runs the test hook.
func (f *feed) startPoll() {
	n := f.polls.Add(1)
	if f.pollHook != nil {
		f.pollHook(n)
	}
}

// cursor is a feed position: the mode and scope it belongs to, the server it came from (AD:
// the DC's dnsHostName), and the mode's own position (a cookie, a USN, a timestamp).
type cursor struct {
	mode, fp, server string
	pos              []byte
}

func (c cursor) String() string {
	return strings.Join([]string{c.mode, c.fp, c.server, base64.RawURLEncoding.EncodeToString(c.pos)}, ":")
}

// parseCursor reads a cursor this feed wrote; why says what is wrong with one it cannot use.
func (f *feed) parseCursor(s, server string) (c cursor, why string) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 {
		return c, "the cursor is not an LDAP feed cursor"
	}
	pos, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return c, "the cursor is damaged"
	}
	c = cursor{mode: parts[0], fp: parts[1], server: parts[2], pos: pos}
	switch {
	case c.mode != f.mode:
		return c, fmt.Sprintf("the cursor is from feed mode %s, the feed now runs %s", c.mode, f.mode)
	case c.fp != f.fp:
		return c, "the users or groups base DN, scope, filter or id attribute changed since the cursor was written"
	case !strings.EqualFold(c.server, server):
		return c, fmt.Sprintf("the cursor is from server %q, the feed now talks to %q (positions are per server)", c.server, server)
	}
	return c, ""
}

// scopeFingerprint identifies the configured scope: a cursor from another scope is not used.
func (s *source) scopeFingerprint() string {
	h := sha256.New()
	for _, v := range []string{s.cfg.IDAttribute, NormalizeDN(s.cfg.Users.BaseDN), s.cfg.Users.Scope, s.cfg.Users.Filter,
		NormalizeDN(s.cfg.Groups.BaseDN), s.cfg.Groups.Scope, s.cfg.Groups.Filter} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// commonBase is the nearest entry above both base DNs: one search under it sees both users
// and groups, and entries moving out of either base.
func (f *feed) commonBase() (string, error) {
	u, err := goldap.ParseDN(f.s.cfg.Users.BaseDN)
	if err != nil {
		return "", fmt.Errorf("ldap: users.base_dn: %w", err)
	}
	g, err := goldap.ParseDN(f.s.cfg.Groups.BaseDN)
	if err != nil {
		return "", fmt.Errorf("ldap: groups.base_dn: %w", err)
	}
	var parts []string
	for i, j := len(u.RDNs)-1, len(g.RDNs)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if !u.RDNs[i].EqualFold(g.RDNs[j]) {
			break
		}
		parts = append([]string{u.RDNs[i].String()}, parts...)
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("ldap: feed.mode %s: users.base_dn %q and groups.base_dn %q have no entry in common for one search to watch both",
			f.mode, f.s.cfg.Users.BaseDN, f.s.cfg.Groups.BaseDN)
	}
	return strings.Join(parts, ","), nil
}

// watchFilter selects what the feed's search sees: users or groups (their base DNs are checked
// afterwards, by scopeCheck).
func (s *source) watchFilter() string {
	return "(|" + s.cfg.Users.Filter + s.cfg.Groups.Filter + ")"
}

// candidate is an entry a feed saw change: its id, its DN now (empty when the feed does not
// say), and whether the server says it is gone.
type candidate struct {
	id, dn  string
	deleted bool
	at      time.Time
}

// classify turns what a feed saw into Changes: a live entry is a user or a group when it is in
// that scope now (base DN, scope and filter, asked of the server: one search for the users and
// one for the groups among them, over aux), and a deletion otherwise (gone, moved out or no
// longer matching; the engine ignores ids it does not hold). Deleted entries are reported with
// Kind "" (the server no longer says what they were).
func (f *feed) classify(ctx context.Context, aux *goldap.Conn, cands []candidate) ([]connectors.Change, error) {
	var live []candidate
	var out []connectors.Change
	seen := map[string]bool{}
	for _, c := range cands {
		if seen[c.id] {
			continue
		}
		seen[c.id] = true
		if c.deleted {
			out = append(out, connectors.Change{ID: c.id, Deleted: true, At: c.at})
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return out, nil
	}
	users, groups := map[string]bool{}, map[string]bool{}
	for _, k := range []struct {
		sc    scopeConfig
		found map[string]bool
	}{
		{f.s.usersSearch(), users},
		{f.s.groupsSearch(), groups},
	} {
		var ids []string
		for _, c := range live {
			if c.dn == "" || dnInBase(c.dn, k.sc.base, k.sc.scope) {
				ids = append(ids, c.id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		err := f.s.searchIDs(ctx, goPager(aux), k.sc, ids, []string{f.s.cfg.IDAttribute}, func(e *goldap.Entry) error {
			if id := entryID(e, f.s.cfg.IDAttribute); id != "" {
				k.found[id] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, c := range live {
		ch := connectors.Change{ID: c.id, At: c.at}
		switch {
		case users[c.id]:
			ch.Kind = connectors.ChangeUser
		case groups[c.id]:
			ch.Kind = connectors.ChangeGroup
		default:
			ch.Deleted = true // out of scope now: moved out, or no longer matching the filter
		}
		out = append(out, ch)
	}
	return out, nil
}

// entryID renders an entry's id attribute as Entry.ID does.
func entryID(e *goldap.Entry, idAttr string) string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, idAttr) && len(a.ByteValues) > 0 {
			return attrValue(a.Name, a.ByteValues[0])
		}
	}
	return ""
}

// dnInBase reports whether dn lies in the search base with the scope (sub, one, base).
func dnInBase(dn, base, scope string) bool {
	n, b := NormalizeDN(dn), NormalizeDN(base)
	sc, _ := parseScope(scope)
	switch sc {
	case goldap.ScopeBaseObject:
		return n == b
	case goldap.ScopeSingleLevel:
		_, parent, _ := strings.Cut(n, ",")
		return parent == b
	}
	return n == b || strings.HasSuffix(n, ","+b)
}

// deliver classifies and hands over a batch, unless it has nothing to say.
func (f *feed) deliver(ctx context.Context, aux *goldap.Conn, cands []candidate, cur cursor, prev string, fn func(connectors.ChangeBatch) error) (string, error) {
	changes, err := f.classify(ctx, aux, cands)
	if err != nil {
		return prev, err
	}
	next := cur.String()
	if len(changes) == 0 && next == prev {
		return prev, nil
	}
	if len(changes) > 0 {
		f.logger.Debug("ldap: changes seen", "changes", len(changes))
	}
	if err := fn(connectors.ChangeBatch{Changes: changes, Cursor: next}); err != nil {
		return prev, err
	}
	return next, nil
}

// lost hands over a Full batch: the feed lost its place (why) and starts again at cur.
func (f *feed) lost(why string, cur cursor, fn func(connectors.ChangeBatch) error) (string, error) {
	f.logger.Warn("ldap: change feed lost its place; a full read is needed", "reason", why)
	next := cur.String()
	return next, fn(connectors.ChangeBatch{Cursor: next, Full: true, Reason: "ldap " + f.mode + " feed: " + why})
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
