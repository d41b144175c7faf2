package ldap_test

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

const (
	olPeople = "ou=people," + ldaptest.SlapdSuffix
	olGroups = "ou=groups," + ldaptest.SlapdSuffix
)

// admin2 binds again as the root DN (after a restart).
func admin2(t *testing.T, s *ldaptest.Slapd) *goldap.Conn {
	return adminConn(t, s.URL, ldaptest.SlapdRootDN, ldaptest.SlapdRootPW)
}

// olFeedSource opens the fixture directory through a counting proxy (plain LDAP, so that the
// proxy can count).
func olFeedSource(t *testing.T, s *ldaptest.Slapd, mode string) (connectors.Source, *ldaptest.Proxy, ldap.Config) {
	t.Helper()
	proxy := ldaptest.StartProxy(t, strings.TrimPrefix(s.URL, "ldap://"))
	cfg := olConfig(s)
	cfg.URL, cfg.StartTLS = proxy.URL, false
	cfg.Feed = ldap.FeedConfig{Mode: mode, PollInterval: 200 * time.Millisecond}
	src, err := cfg.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src, proxy, cfg
}

func openFeed(t *testing.T, src connectors.Source, wantMode string) connectors.Feed {
	t.Helper()
	fd, err := src.(connectors.FeedSource).Feed(context.Background())
	if err != nil {
		t.Fatalf("Feed: %v", err)
	}
	if got := ldap.FeedMode(fd); got != wantMode {
		t.Errorf("feed mode %q, want %q", got, wantMode)
	}
	return fd
}

// olSteps are the edits every OpenLDAP feed must see: a modify, an add, a rename, a membership
// change, a nested group's edit, a move out of scope and (deletes, for syncrepl) a delete.
func olSteps(admin *goldap.Conn, deletes bool) []changeStep {
	id := func(t *testing.T, dn string) string { return idOf(t, admin, dn, "entryUUID") }
	steps := []changeStep{
		{name: "modify alice", kind: connectors.ChangeUser, do: func(t *testing.T, edited func()) string {
			modify(t, admin, "uid=alice,"+olPeople, func(m *goldap.ModifyRequest) { m.Replace("title", []string{"Staff Engineer"}) })
			edited()
			return id(t, "uid=alice,"+olPeople)
		}},
		{name: "add zed", kind: connectors.ChangeUser, do: func(t *testing.T, edited func()) string {
			a := goldap.NewAddRequest("uid=zed,"+olPeople, nil)
			a.Attribute("objectClass", []string{"inetOrgPerson"})
			a.Attribute("uid", []string{"zed"})
			a.Attribute("cn", []string{"Zed Zane"})
			a.Attribute("sn", []string{"Zane"})
			if err := admin.Add(a); err != nil {
				t.Fatal(err)
			}
			edited()
			return id(t, "uid=zed,"+olPeople)
		}},
		{name: "rename bob", kind: connectors.ChangeUser, do: func(t *testing.T, edited func()) string {
			moveDN(t, admin, "uid=bob,"+olPeople, "uid=robert", "")
			edited()
			return id(t, "uid=robert,"+olPeople)
		}},
		{name: "add a member to ops", kind: connectors.ChangeGroup, do: func(t *testing.T, edited func()) string {
			modify(t, admin, "cn=ops,"+olGroups, func(m *goldap.ModifyRequest) {
				m.Add("uniqueMember", []string{"uid=alice," + olPeople})
			})
			edited()
			return id(t, "cn=ops,"+olGroups)
		}},
		{name: "edit platform, nested in eng", kind: connectors.ChangeGroup, do: func(t *testing.T, edited func()) string {
			modify(t, admin, "cn=platform,"+olGroups, func(m *goldap.ModifyRequest) {
				m.Add("member", []string{"uid=carol," + olPeople})
			})
			edited()
			return id(t, "cn=platform,"+olGroups)
		}},
		{name: "move carol out of ou=people", del: true, do: func(t *testing.T, edited func()) string {
			moveDN(t, admin, "uid=carol,"+olPeople, "uid=carol", "ou=contractors,"+ldaptest.SlapdSuffix)
			edited()
			return id(t, "uid=carol,ou=contractors,"+ldaptest.SlapdSuffix)
		}},
	}
	if deletes {
		steps = append(steps, changeStep{name: "delete dave", del: true, do: func(t *testing.T, edited func()) string {
			dave := id(t, "uid=dave,"+olPeople)
			if err := admin.Del(goldap.NewDelRequest("uid=dave,"+olPeople, nil)); err != nil {
				t.Fatal(err)
			}
			edited()
			return dave
		}})
	}
	return steps
}

// TestSyncreplFeed: every kind of edit is pushed (syncrepl refreshAndPersist), classified, and
// read back with at most 5 requests; the cursor resumes after a restart; a cursor older than
// syncprov's session log, or a damaged one, gives a Full batch and the feed goes on.
func TestSyncreplFeed(t *testing.T) {
	s := startFixtureSlapd(t)
	src, proxy, cfg := olFeedSource(t, s, ldap.FeedAuto)
	admin := adminConn(t, s.URL, ldaptest.SlapdRootDN, ldaptest.SlapdRootPW)
	checkReadEntries(t, src, "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002")

	fd := openFeed(t, src, ldap.FeedSyncrepl)
	run := startWatch(t, fd, "")
	if first := run.next(t, 10*time.Second); len(first.batch.Changes) != 0 || first.batch.Cursor == "" || first.batch.Full {
		t.Fatalf("first batch %+v, want only a cursor", first.batch)
	}
	fig := runSteps(t, run, src, proxy, nil, olSteps(admin, true), 10*time.Second)
	t.Logf("syncrepl push: latency %v, requests %v", fig.latencies, fig.requests)
	checkReadEntries(t, src, "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002")

	// slapd restarts under the feed: it dials again and resumes (or, if the server lost its
	// place, says so with a Full batch).
	s.Stop()
	s.Start()
	edit := time.Now()
	modify(t, admin2(t, s), "uid=alice,"+olPeople, func(m *goldap.ModifyRequest) { m.Replace("title", []string{"Principal"}) })
	aliceID := idOf(t, admin2(t, s), "uid=alice,"+olPeople, "entryUUID")
	for seen := false; !seen; {
		d := run.next(t, 20*time.Second)
		if d.batch.Full {
			t.Logf("after the slapd restart: Full batch: %s", d.batch.Reason)
		}
		for _, c := range d.batch.Changes {
			seen = seen || c.ID == aliceID
		}
	}
	t.Logf("after the slapd restart: alice's edit seen %v after it", time.Since(edit).Round(time.Millisecond))
	admin = admin2(t, s)

	// Restart: what changes while the feed is closed is delivered on resume; what was delivered
	// before the cursor is not delivered again.
	time.Sleep(300 * time.Millisecond) // let the last push's cursor arrive
	cursor := run.lastCursor()
	run.stop(t)
	modify(t, admin, "uid=alice,"+olPeople, func(m *goldap.ModifyRequest) { m.Replace("mail", []string{"alice@new.example.test"}) })
	alice := idOf(t, admin, "uid=alice,"+olPeople, "entryUUID")
	zed := idOf(t, admin, "uid=zed,"+olPeople, "entryUUID")
	ops := idOf(t, admin, "cn=ops,"+olGroups, "entryUUID")
	if err := admin.Del(goldap.NewDelRequest("uid=zed,"+olPeople, nil)); err != nil {
		t.Fatal(err)
	}
	run = startWatch(t, openFeed(t, src, ldap.FeedSyncrepl), cursor)
	d := run.next(t, 10*time.Second)
	got := map[string]connectors.Change{}
	for _, c := range d.batch.Changes {
		got[c.ID] = c
	}
	if c, ok := got[alice]; !ok || c.Kind != connectors.ChangeUser || c.Deleted {
		t.Errorf("resumed batch %+v: alice's change missing or wrong", d.batch.Changes)
	}
	if c, ok := got[zed]; !ok || !c.Deleted {
		t.Errorf("resumed batch %+v: zed's deletion missing", d.batch.Changes)
	}
	if _, ok := got[ops]; ok {
		t.Errorf("resumed batch %+v repeats ops, delivered before the cursor", d.batch.Changes)
	}
	run.stop(t)

	// A cursor older than the session log, and a damaged one: a Full batch, then changes again.
	parts := strings.Split(cursor, ":")
	parts[3] = base64.RawURLEncoding.EncodeToString([]byte("rid=000,csn=20000101000000.000000Z#000000#000#000000"))
	for _, bad := range []string{strings.Join(parts, ":"), "not-a-cursor", "syncrepl:0123456789ab::" + parts[3]} {
		run = startWatch(t, openFeed(t, src, ldap.FeedSyncrepl), bad)
		d := run.next(t, 10*time.Second)
		if !d.batch.Full || d.batch.Reason == "" || d.batch.Cursor == "" {
			t.Errorf("cursor %q: first batch %+v, want Full with a reason and a new cursor", bad, d.batch)
		} else {
			t.Logf("cursor %q: %s", bad, d.batch.Reason)
		}
		modify(t, admin, "cn=eng,"+olGroups, func(m *goldap.ModifyRequest) { m.Replace("description", []string{bad}) })
		run.waitFor(t, idOf(t, admin, "cn=eng,"+olGroups, "entryUUID"), time.Time{}, 10*time.Second)
		run.stop(t)
	}
	_ = cfg
}

// TestTimestampFeed: on a slapd without syncprov, auto falls back to modifyTimestamp polling,
// which sees every edit but deletions by the first poll after it (deletions are left to the
// periodic full read).
func TestTimestampFeed(t *testing.T) {
	s := ldaptest.StartSlapd(t, ldaptest.SlapdOptions{NoSyncprov: true})
	s.Add(olFixture)
	src, proxy, _ := olFeedSource(t, s, ldap.FeedAuto)
	admin := adminConn(t, s.URL, ldaptest.SlapdRootDN, ldaptest.SlapdRootPW)
	fd := openFeed(t, src, ldap.FeedTimestamp)
	var mu sync.Mutex
	starts := map[int64]int64{}
	ldap.SetFeedPollHook(fd, func(n int64) { mu.Lock(); starts[n] = proxy.Requests(); mu.Unlock() })
	pollStart := func(n int64) int64 { mu.Lock(); defer mu.Unlock(); return starts[n] }
	run := startWatch(t, fd, "")
	if first := run.next(t, 10*time.Second); len(first.batch.Changes) != 0 || first.batch.Cursor == "" || first.batch.Full {
		t.Fatalf("first batch %+v, want only a cursor", first.batch)
	}
	fig := runSteps(t, run, src, proxy, pollStart, olSteps(admin, false), 10*time.Second)
	t.Logf("timestamp at a 200ms poll: latency %v, requests %v", fig.latencies, fig.requests)

	// An explicit syncrepl feed on this server is an error naming the overlay.
	cfg := olConfig(s)
	cfg.Feed.Mode = ldap.FeedSyncrepl
	plain, err := cfg.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.(connectors.FeedSource).Feed(context.Background()); err == nil || !strings.Contains(err.Error(), "syncprov") {
		t.Errorf("Feed with mode syncrepl on a server without syncprov: %v, want an error naming syncprov", err)
	}
}
