package ldap

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
)

// dirSyncFlags asks for object security (a bind without the Replicating Directory Changes
// right sees what it may read) and incremental values (a member change returns the changed
// values, not a large group's whole member list).
const dirSyncFlags = goldap.DirSyncObjectSecurity | goldap.DirSyncIncrementalValues

// ncRoot is the naming context the AD feeds watch: DirSync only accepts a partition's root.
func (f *feed) ncRoot() (string, error) {
	u, g := domainRoot(f.s.cfg.Users.BaseDN), domainRoot(f.s.cfg.Groups.BaseDN)
	if NormalizeDN(u) != NormalizeDN(g) {
		return "", fmt.Errorf("ldap: feed.mode %s: users.base_dn and groups.base_dn are in different domains (%q, %q); one feed watches one",
			f.mode, u, g)
	}
	return u, nil
}

// rootDSE reads the DC's name and its highest committed USN.
func rootDSE(conn *goldap.Conn) (host string, usn int64, err error) {
	res, err := conn.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"dnsHostName", "highestCommittedUSN"}, nil))
	if err != nil {
		return "", 0, fmt.Errorf("ldap: read root DSE: %w", err)
	}
	if len(res.Entries) != 1 {
		return "", 0, fmt.Errorf("ldap: read root DSE: %d entries", len(res.Entries))
	}
	e := res.Entries[0]
	host = e.GetAttributeValue("dnsHostName")
	if v := e.GetAttributeValue("highestCommittedUSN"); v != "" {
		if usn, err = strconv.ParseInt(v, 10, 64); err != nil {
			return "", 0, fmt.Errorf("ldap: root DSE highestCommittedUSN %q: %w", v, err)
		}
	}
	return host, usn, nil
}

// dirSyncProbe runs a DirSync search that matches nothing: its cookie is the DC's position now.
func (f *feed) dirSyncProbe() ([]byte, error) {
	root, err := f.ncRoot()
	if err != nil {
		return nil, err
	}
	main, _, err := f.conns()
	if err != nil {
		return nil, err
	}
	req := goldap.NewSearchRequest(root, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, noEntry, []string{"objectGUID"}, nil)
	res, err := main.DirSync(req, dirSyncFlags, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("ldap: dirsync under %q: %w", root, err)
	}
	c, ok := goldap.FindControl(res.Controls, goldap.ControlTypeDirSync).(*goldap.ControlDirSync)
	if !ok || len(c.Cookie) == 0 {
		return nil, fmt.Errorf("ldap: dirsync under %q: no cookie returned: %w", root,
			goldap.NewError(goldap.LDAPResultUnavailableCriticalExtension, fmt.Errorf("no dirsync control")))
	}
	return c.Cookie, nil
}

// dirSyncAttrs is what a DirSync poll asks for: DirSync returns an object only when one of the
// listed attributes changed, so the list holds every attribute a read takes, the member
// attributes, and the name and parent (renames and moves).
func (f *feed) dirSyncAttrs() []string {
	attrs := searchAttributes(f.s.userAttrs(), f.s.cfg.Groups.Attributes...)
	attrs = searchAttributes(attrs, f.s.cfg.Groups.MemberAttributes...)
	attrs = searchAttributes(attrs, f.s.cfg.Groups.MemberUIDAttributes...)
	return searchAttributes(attrs, "objectGUID", "isDeleted", "name", "parentGUID")
}

// adWatchFilter adds tombstones to the users and groups: they lose objectCategory, so the
// configured filters no longer match them.
func (f *feed) adWatchFilter() string {
	return "(|" + f.s.cfg.Users.Filter + f.s.cfg.Groups.Filter + "(isDeleted=TRUE))"
}

// dirSyncPoll returns what changed since cookie, and the cookie after it.
func (f *feed) dirSyncPoll(main *goldap.Conn, root string, cookie []byte) ([]candidate, []byte, error) {
	var cands []candidate
	for {
		req := goldap.NewSearchRequest(root, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
			f.adWatchFilter(), f.dirSyncAttrs(), nil)
		res, err := main.DirSync(req, dirSyncFlags, 0, cookie)
		if err != nil {
			return nil, nil, fmt.Errorf("ldap: dirsync under %q: %w", root, err)
		}
		for _, e := range res.Entries {
			if c, ok := f.adCandidate(e); ok {
				cands = append(cands, c)
			}
		}
		c, ok := goldap.FindControl(res.Controls, goldap.ControlTypeDirSync).(*goldap.ControlDirSync)
		if !ok || len(c.Cookie) == 0 {
			return nil, nil, fmt.Errorf("ldap: dirsync under %q: no cookie returned: %w", root, ErrIncomplete)
		}
		cookie = c.Cookie
		if c.Flags == 0 { // no more data
			return cands, cookie, nil
		}
	}
}

// adCandidate reads a changed AD object: its id, its DN, and whether it is a tombstone.
func (f *feed) adCandidate(e *goldap.Entry) (candidate, bool) {
	id := entryID(e, f.s.cfg.IDAttribute)
	if id == "" {
		return candidate{}, false
	}
	deleted := strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE")
	c := candidate{id: id, deleted: deleted}
	if !deleted {
		c.dn = e.DN
	}
	return c, true
}

// usnPoll returns the users, groups and tombstones whose uSNChanged is above from, and the DC's
// highestCommittedUSN read before the search (the next poll's from): two requests a poll.
func (f *feed) usnPoll(ctx context.Context, main *goldap.Conn, root string, from int64) ([]candidate, int64, error) {
	_, high, err := rootDSE(main)
	if err != nil {
		return nil, 0, err
	}
	if high <= from {
		return nil, from, nil
	}
	filter := fmt.Sprintf("(&%s(uSNChanged>=%d)(uSNChanged<=%d))", f.adWatchFilter(), from+1, high)
	var cands []candidate
	err = f.s.searchWith(ctx, goPager(main), "changed objects", root, "sub", filter,
		[]string{f.s.cfg.IDAttribute, "isDeleted"}, []goldap.Control{goldap.NewControlMicrosoftShowDeleted()},
		func(e *goldap.Entry) error {
			if c, ok := f.adCandidate(e); ok {
				cands = append(cands, c)
			}
			return nil
		})
	if err != nil {
		return nil, 0, err
	}
	return cands, high, nil
}

// watchAD polls the DC every poll interval, with DirSync or for uSNChanged. Positions are the
// DC's own: a cursor from another DC (dnsHostName), or a DirSync cookie the DC refuses, loses
// the place (a Full batch) and the feed starts again from the DC's position now.
func (f *feed) watchAD(ctx context.Context, cursorStr string, fn func(connectors.ChangeBatch) error) error {
	root, err := f.ncRoot()
	if err != nil {
		return err
	}
	main, aux, err := f.conns()
	if err != nil {
		return err
	}
	host, _, err := rootDSE(main)
	if err != nil {
		return err
	}
	at := func(pos []byte) cursor { return cursor{mode: f.mode, fp: f.fp, server: host, pos: pos} }
	fresh := func() ([]byte, error) {
		if f.mode == FeedDirSync {
			return f.dirSyncProbe()
		}
		_, usn, err := rootDSE(main)
		return []byte(strconv.FormatInt(usn, 10)), err
	}
	var pos []byte
	prev := cursorStr
	if cursorStr == "" {
		if pos, err = fresh(); err != nil {
			return err
		}
		if prev, err = f.deliver(ctx, aux, nil, at(pos), "", fn); err != nil {
			return err
		}
	} else {
		c, why := f.parseCursor(cursorStr, host)
		if _, err := strconv.ParseInt(string(c.pos), 10, 64); why == "" && f.mode == FeedUSN && err != nil {
			why = "the cursor's USN is damaged"
		}
		pos = c.pos
		if why != "" {
			if pos, err = fresh(); err != nil {
				return err
			}
			if prev, err = f.lost(why, at(pos), fn); err != nil {
				return err
			}
		}
	}
	for {
		if main, aux, err = f.conns(); err != nil {
			return err
		}
		f.startPoll()
		var cands []candidate
		var next []byte
		if f.mode == FeedDirSync {
			cands, next, err = f.dirSyncPoll(main, root, pos)
			if err != nil && goldap.IsErrorAnyOf(err, goldap.LDAPResultUnavailableCriticalExtension, goldap.LDAPResultProtocolError) {
				if pos, err = fresh(); err != nil {
					return err
				}
				if prev, err = f.lost("the DC no longer accepts the DirSync cookie", at(pos), fn); err != nil {
					return err
				}
				continue
			}
		} else {
			from, _ := strconv.ParseInt(string(pos), 10, 64)
			var high int64
			cands, high, err = f.usnPoll(ctx, main, root, from)
			if high < from && err == nil {
				// The DC's USNs went back: a restore from backup. What happened since is unknown.
				if pos, err = fresh(); err != nil {
					return err
				}
				if prev, err = f.lost("the DC's highestCommittedUSN went back (restored?)", at(pos), fn); err != nil {
					return err
				}
				continue
			}
			next = []byte(strconv.FormatInt(high, 10))
		}
		if err != nil {
			return err
		}
		if prev, err = f.deliver(ctx, aux, cands, at(next), prev, fn); err != nil {
			return err
		}
		pos = next
		if err := sleep(ctx, f.s.cfg.Feed.PollInterval); err != nil {
			return err
		}
	}
}

// timestampLayout is the GeneralizedTime form modifyTimestamp takes.
const timestampLayout = "20060102150405Z"

// watchTimestamp polls for users and groups with a modifyTimestamp at or after the last one
// seen. modifyTimestamp has whole seconds: entries of that last second come again on the next
// poll, and are delivered again only if what a read takes of them (their DN and attributes)
// differs from what was delivered (so a second edit within the same second is not lost). After
// a restart they are delivered again: at least once. It cannot see deletions; the periodic full
// read finds them. A fresh feed starts a minute back, by the local clock.
func (f *feed) watchTimestamp(ctx context.Context, cursorStr string, fn func(connectors.ChangeBatch) error) error {
	base, err := f.commonBase()
	if err != nil {
		return err
	}
	at := func(ts string) cursor { return cursor{mode: FeedTimestamp, fp: f.fp, pos: []byte(ts)} }
	fresh := time.Now().UTC().Add(-time.Minute).Format(timestampLayout)
	ts := fresh
	prev := cursorStr
	if cursorStr == "" {
		if prev, err = f.deliver(ctx, nil, nil, at(ts), "", fn); err != nil {
			return err
		}
	} else {
		c, why := f.parseCursor(cursorStr, "")
		if _, err := time.Parse(timestampLayout, string(c.pos)); why == "" && err != nil {
			why = "the cursor's timestamp is damaged"
		}
		if why != "" {
			if prev, err = f.lost(why, at(ts), fn); err != nil {
				return err
			}
		} else {
			ts = string(c.pos)
		}
	}
	attrs := searchAttributes(f.s.userAttrs(), f.s.groupAttrs()...)
	attrs = searchAttributes(attrs, f.s.cfg.IDAttribute, "modifyTimestamp")
	seen := map[string]string{} // id -> digest, of the entries delivered at second ts
	for {
		main, aux, err := f.conns()
		if err != nil {
			return err
		}
		f.startPoll()
		var cands []candidate
		next, nextSeen := ts, map[string]string{}
		filter := "(&" + f.s.watchFilter() + "(modifyTimestamp>=" + ts + "))"
		err = f.s.search(ctx, goPager(main), "changed entries", base, "sub", filter, attrs, func(e *goldap.Entry) error {
			id, mt := entryID(e, f.s.cfg.IDAttribute), e.GetAttributeValue("modifyTimestamp")
			if id == "" || mt < ts {
				return nil
			}
			d := entryDigest(e)
			if mt == ts && seen[id] == d {
				return nil
			}
			when, _ := time.Parse(timestampLayout, mt)
			cands = append(cands, candidate{id: id, dn: e.DN, at: when})
			switch {
			case mt > next:
				next, nextSeen = mt, map[string]string{id: d}
			case mt == next:
				nextSeen[id] = d
			}
			return nil
		})
		if err != nil {
			return err
		}
		if next == ts {
			for id, d := range nextSeen {
				seen[id] = d
			}
		} else {
			seen = nextSeen
		}
		if prev, err = f.deliver(ctx, aux, cands, at(next), prev, fn); err != nil {
			return err
		}
		ts = next
		if err := sleep(ctx, f.s.cfg.Feed.PollInterval); err != nil {
			return err
		}
	}
}

// entryDigest sums up an entry's DN and attributes (in the order the server sent them).
func entryDigest(e *goldap.Entry) string {
	h := sha256.New()
	h.Write([]byte(NormalizeDN(e.DN)))
	for _, a := range e.Attributes {
		h.Write([]byte{0})
		h.Write([]byte(strings.ToLower(a.Name)))
		for _, v := range a.ByteValues {
			h.Write([]byte{1})
			h.Write(v)
		}
	}
	return string(h.Sum(nil))
}
