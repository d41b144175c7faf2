package ldap

import (
	"bytes"
	"context"
	"fmt"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
)

// noEntry is a filter nothing matches: a probe with it costs the server nothing and still
// returns a position (syncrepl cookie, DirSync cookie).
const noEntry = "(&(objectClass=*)(!(objectClass=*)))"

// syncreplProbe asks for a refreshOnly sync of nothing: it returns the server's current cookie,
// or the server's refusal when it has no syncprov.
func (f *feed) syncreplProbe(ctx context.Context) ([]byte, error) {
	base, err := f.commonBase()
	if err != nil {
		return nil, err
	}
	main, _, err := f.conns()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.s.cfg.RequestTimeout)
	defer cancel()
	req := goldap.NewSearchRequest(base, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, noEntry, []string{"1.1"}, nil)
	r := main.Syncrepl(ctx, req, 4, goldap.SyncRequestModeRefreshOnly, nil, false)
	var cookie []byte
	for r.Next() {
		for _, c := range r.Controls() {
			if d, ok := c.(*goldap.ControlSyncDone); ok && len(d.Cookie) > 0 {
				cookie = d.Cookie
			}
		}
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("ldap: syncrepl probe under %q: %w", base, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ldap: syncrepl probe under %q: %w", base, err)
	}
	if len(cookie) == 0 {
		return nil, fmt.Errorf("ldap: syncrepl probe under %q: the server returned no cookie: %w", base,
			goldap.NewError(goldap.LDAPResultUnavailableCriticalExtension, fmt.Errorf("no sync done control")))
	}
	return cookie, nil
}

// validSyncCookie reports whether a cookie looks like one syncprov writes (rid=...,csn=...):
// syncprov takes a cookie it cannot read as no cookie at all and sends the whole content as
// if it were a change.
func validSyncCookie(c []byte) bool { return bytes.Contains(c, []byte("csn=")) }

// watchSyncrepl holds a refreshAndPersist search open under the common base: the refresh
// phase (what changed since the cookie: entries, and deletions from syncprov's session log)
// is delivered as one batch, then each change as the server pushes it. A refresh that falls
// back to a present phase (the cookie is older than the session log), or a server asking for
// a refresh (e-syncRefreshRequired), loses the place: a Full batch, and a fresh start.
func (f *feed) watchSyncrepl(ctx context.Context, cursorStr string, fn func(connectors.ChangeBatch) error) error {
	base, err := f.commonBase()
	if err != nil {
		return err
	}
	at := func(cookie []byte) cursor { return cursor{mode: FeedSyncrepl, fp: f.fp, pos: cookie} }
	restart := func(why string) ([]byte, string, error) {
		_ = f.closeConns() // an unfinished search is dropped with its connection
		cookie, err := f.syncreplProbe(ctx)
		if err != nil {
			return nil, "", err
		}
		prev, err := f.lost(why, at(cookie), fn)
		return cookie, prev, err
	}
	var cookie []byte
	prev := cursorStr
	if cursorStr == "" {
		if cookie, err = f.syncreplProbe(ctx); err != nil {
			return err
		}
		if prev, err = f.deliver(ctx, nil, nil, at(cookie), "", fn); err != nil {
			return err
		}
	} else {
		c, why := f.parseCursor(cursorStr, "")
		if why == "" && !validSyncCookie(c.pos) {
			why = "the cursor's syncrepl cookie is damaged"
		}
		if why != "" {
			if cookie, prev, err = restart(why); err != nil {
				return err
			}
		} else {
			cookie = c.pos
		}
	}
	for {
		main, aux, err := f.conns()
		if err != nil {
			return err
		}
		main.SetTimeout(0) // the search stays open; a request timeout would end it
		f.startPoll()
		req := goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
			f.s.watchFilter(), []string{"1.1"}, nil)
		sctx, cancel := context.WithCancel(ctx)
		r := main.Syncrepl(sctx, req, 64, goldap.SyncRequestModeRefreshAndPersist, cookie, false)
		var (
			pending    []candidate
			refreshing = true
			why        string
		)
		for why == "" && r.Next() {
			e := r.Entry()
			for _, c := range r.Controls() {
				switch c := c.(type) {
				case *goldap.ControlSyncState:
					if len(c.Cookie) > 0 {
						cookie = c.Cookie
					}
					if c.State == goldap.SyncStatePresent {
						why = "the server answered with a present phase (the cursor is older than syncprov's session log)"
						continue
					}
					cand := candidate{id: c.EntryUUID.String(), deleted: c.State == goldap.SyncStateDelete}
					if e != nil {
						cand.dn = e.DN
					}
					pending = append(pending, cand)
				case *goldap.ControlSyncInfo:
					switch {
					case c.NewCookie != nil:
						if len(c.NewCookie.Cookie) > 0 {
							cookie = c.NewCookie.Cookie
						}
					case c.SyncIdSet != nil:
						if len(c.SyncIdSet.Cookie) > 0 {
							cookie = c.SyncIdSet.Cookie
						}
						if !c.SyncIdSet.RefreshDeletes {
							why = "the server answered with a present phase (the cursor is older than syncprov's session log)"
							continue
						}
						for _, u := range c.SyncIdSet.SyncUUIDs {
							pending = append(pending, candidate{id: u.String(), deleted: true})
						}
					case c.RefreshDelete != nil:
						if len(c.RefreshDelete.Cookie) > 0 {
							cookie = c.RefreshDelete.Cookie
						}
						refreshing = refreshing && !c.RefreshDelete.RefreshDone
					case c.RefreshPresent != nil:
						why = "the server answered with a present phase (the cursor is older than syncprov's session log)"
					}
				}
			}
			if why != "" || refreshing {
				continue
			}
			if prev, err = f.deliver(ctx, aux, pending, at(cookie), prev, fn); err != nil {
				cancel()
				return err
			}
			pending = nil
		}
		cancel()
		err = r.Err()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if why == "" && goldap.IsErrorWithCode(err, goldap.LDAPResultSyncRefreshRequired) {
			why = "the server asks for a full refresh (e-syncRefreshRequired)"
		}
		if why != "" {
			if cookie, prev, err = restart(why); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("ldap: syncrepl search under %q: %w", base, err)
		}
		return fmt.Errorf("ldap: syncrepl search under %q ended: %w", base, ErrIncomplete)
	}
}
