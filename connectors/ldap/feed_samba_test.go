package ldap_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

var fixtureRuns atomic.Int64

// short is a prefix for sAMAccountNames (at most 20 characters) unique to a fixture.
func short(tag string) string { return tag[:2] + strings.TrimLeft(tag, "abcdefghijklmnopqrstuvwxyz") }

// adFeedFixture makes OU=Feed-<tag> with users fa..fd and OU=FeedGroups-<tag> with FG1 >
// FG2 (nested) of its own, so that the edits leave the shared fixture alone.
func adFeedFixture(t testing.TB, admin *goldap.Conn, tag string) (users, groups, unique string) {
	t.Helper()
	tag = fmt.Sprintf("%s%d", tag, fixtureRuns.Add(1)) // -count=N runs each make their own
	users = "OU=Feed-" + tag + "," + ldaptest.SambaBaseDN
	groups = "OU=FeedGroups-" + tag + "," + ldaptest.SambaBaseDN
	add := func(dn string, attrs map[string][]string) {
		a := goldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			a.Attribute(k, v)
		}
		if err := admin.Add(a); err != nil {
			t.Fatalf("add %q: %v", dn, err)
		}
	}
	add(users, map[string][]string{"objectClass": {"organizationalUnit"}})
	add(groups, map[string][]string{"objectClass": {"organizationalUnit"}})
	for _, u := range []string{"fa", "fb", "fc", "fd"} {
		add("CN="+u+","+users, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {short(tag) + u},
			"userAccountControl": {"544"}, "givenName": {u}, "sn": {"Feed"}})
	}
	add("CN=FG2,"+groups, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {short(tag) + "FG2"}, "member": {"CN=fb," + users}})
	add("CN=FG1,"+groups, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {short(tag) + "FG1"}, "member": {"CN=fa," + users, "CN=FG2," + groups}})
	return users, groups, tag
}

func adSteps(admin *goldap.Conn, users, groups, tag string) []changeStep {
	id := func(t testing.TB, dn string) string { return idOf(t, admin, dn, "objectGUID") }
	return []changeStep{
		{name: "modify fa", kind: connectors.ChangeUser, do: func(t testing.TB, edited func()) string {
			modify(t, admin, "CN=fa,"+users, func(m *goldap.ModifyRequest) { m.Replace("title", []string{"Engineer"}) })
			edited()
			return id(t, "CN=fa,"+users)
		}},
		{name: "add fe", kind: connectors.ChangeUser, do: func(t testing.TB, edited func()) string {
			a := goldap.NewAddRequest("CN=fe,"+users, nil)
			a.Attribute("objectClass", []string{"user"})
			a.Attribute("sAMAccountName", []string{short(tag) + "fe"})
			a.Attribute("userAccountControl", []string{"544"})
			if err := admin.Add(a); err != nil {
				t.Fatal(err)
			}
			edited()
			return id(t, "CN=fe,"+users)
		}},
		{name: "rename fb", kind: connectors.ChangeUser, do: func(t testing.TB, edited func()) string {
			moveDN(t, admin, "CN=fb,"+users, "CN=fb2", "")
			edited()
			return id(t, "CN=fb2,"+users)
		}},
		{name: "disable fa", kind: connectors.ChangeUser, do: func(t testing.TB, edited func()) string {
			modify(t, admin, "CN=fa,"+users, func(m *goldap.ModifyRequest) { m.Replace("userAccountControl", []string{"546"}) })
			edited()
			return id(t, "CN=fa,"+users)
		}},
		{name: "add a member to FG1", kind: connectors.ChangeGroup, do: func(t testing.TB, edited func()) string {
			modify(t, admin, "CN=FG1,"+groups, func(m *goldap.ModifyRequest) { m.Add("member", []string{"CN=fc," + users}) })
			edited()
			return id(t, "CN=FG1,"+groups)
		}},
		{name: "edit FG2, nested in FG1", kind: connectors.ChangeGroup, do: func(t testing.TB, edited func()) string {
			modify(t, admin, "CN=FG2,"+groups, func(m *goldap.ModifyRequest) { m.Add("member", []string{"CN=fd," + users}) })
			edited()
			return id(t, "CN=FG2,"+groups)
		}},
		{name: "move fc out of scope", del: true, do: func(t testing.TB, edited func()) string {
			moveDN(t, admin, "CN=fc,"+users, "CN=fc-"+tag, "OU=Outside,"+ldaptest.SambaBaseDN)
			edited()
			return id(t, "CN=fc-"+tag+",OU=Outside,"+ldaptest.SambaBaseDN)
		}},
		{name: "delete fd", del: true, do: func(t testing.TB, edited func()) string {
			fd := id(t, "CN=fd,"+users)
			if err := admin.Del(goldap.NewDelRequest("CN=fd,"+users, nil)); err != nil {
				t.Fatal(err)
			}
			edited()
			return fd
		}},
	}
}

// TestADFeeds: through DirSync and through uSNChanged polling, every kind of edit is seen by
// the first poll after it, classified, and read back with at most 5 requests counted from that
// poll's start; the cursor resumes after a restart without repeating what it delivered; a
// cursor from another DC or one the DC refuses gives a Full batch and the feed goes on.
func TestADFeeds(t *testing.T) {
	s := adSamba(t)
	admin := adminConn(t, s.URL, ldaptest.SambaAdmin, ldaptest.SambaPassword)
	for _, mode := range []string{ldap.FeedDirSync, ldap.FeedUSN} {
		t.Run(mode, func(t *testing.T) {
			users, groups, tag := adFeedFixture(t, admin, mode)
			proxy := ldaptest.StartProxy(t, "127.0.0.1:389")
			cfg := adConfig(s)
			cfg.URL, cfg.StartTLS = proxy.URL, false
			cfg.Users.BaseDN, cfg.Groups.BaseDN = users, groups
			cfg.Feed = ldap.FeedConfig{Mode: mode, PollInterval: 200 * time.Millisecond}
			if mode == ldap.FeedDirSync {
				cfg.Feed.Mode = ldap.FeedAuto // the DC serves DirSync to an administrator
			}
			src, err := cfg.Open(nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = src.Close() })
			var mu sync.Mutex
			starts := map[int64]int64{}
			pollStart := func(n int64) int64 { mu.Lock(); defer mu.Unlock(); return starts[n] }
			fd := openFeed(t, src, mode)
			hook := func(n int64) { mu.Lock(); starts[n] = proxy.Requests(); mu.Unlock() }
			ldap.SetFeedPollHook(fd, hook)
			run := startWatch(t, fd, "")
			if first := run.next(t, 10*time.Second); len(first.batch.Changes) != 0 || first.batch.Cursor == "" || first.batch.Full {
				t.Fatalf("first batch %+v, want only a cursor", first.batch)
			}
			fig := runSteps(t, run, src, proxy, pollStart, adSteps(admin, users, groups, tag), 20*time.Second)
			t.Logf("%s at a 200ms poll: latency %v, requests %v", mode, fig.latencies, fig.requests)

			// Quiet: one request a poll (DirSync; usn: the root DSE, whose USN did not move).
			p := ldap.FeedPolls(fd)
			for ldap.FeedPolls(fd) < p+6 {
				time.Sleep(50 * time.Millisecond)
			}
			if n := pollStart(p+6) - pollStart(p+1); n != 5 {
				t.Errorf("%d LDAP requests in 5 quiet polls, want 5", n)
			}

			// An edit of a user that is out of scope and stays so: DirSync says what changed, and
			// the feed passes it over; usn cannot tell it from a move out and reports it deleted.
			eveDN := "CN=Eve Outside,OU=Outside," + ldaptest.SambaBaseDN
			eve := idOf(t, admin, eveDN, "objectGUID")
			start := time.Now()
			modify(t, admin, eveDN, func(m *goldap.ModifyRequest) { m.Replace("title", []string{"Outsider " + tag}) })
			modify(t, admin, "CN=fa,"+users, func(m *goldap.ModifyRequest) { m.Replace("title", []string{"After eve " + tag}) })
			_, _, seen := run.waitFor(t, idOf(t, admin, "CN=fa,"+users, "objectGUID"), start, 10*time.Second)
			var eveChanges []connectors.Change
			for _, c := range seen {
				if c.ID == eve {
					eveChanges = append(eveChanges, c)
				}
			}
			if mode == ldap.FeedDirSync && len(eveChanges) > 0 {
				t.Errorf("an out-of-scope user's edit was reported: %+v", eveChanges)
			}
			t.Logf("out-of-scope edit: %+v", eveChanges)

			// Restart: changes made while closed arrive with the first poll; earlier ones do not.
			time.Sleep(500 * time.Millisecond)
			cursor := run.lastCursor()
			run.stop(t)
			fa, fe := idOf(t, admin, "CN=fa,"+users, "objectGUID"), idOf(t, admin, "CN=fe,"+users, "objectGUID")
			fg1 := idOf(t, admin, "CN=FG1,"+groups, "objectGUID")
			modify(t, admin, "CN=fa,"+users, func(m *goldap.ModifyRequest) { m.Replace("title", []string{"Lead"}) })
			if err := admin.Del(goldap.NewDelRequest("CN=fe,"+users, nil)); err != nil {
				t.Fatal(err)
			}
			// The source itself is closed and opened again, as a restarted process would.
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if src, err = cfg.Open(nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = src.Close() })
			run = startWatch(t, openFeed(t, src, mode), cursor)
			got := map[string]connectors.Change{}
			for len(got) < 2 {
				for _, c := range run.next(t, 10*time.Second).batch.Changes {
					got[c.ID] = c
				}
			}
			if c := got[fa]; c.Kind != connectors.ChangeUser || c.Deleted {
				t.Errorf("resumed: fa's change %+v, want a user change", c)
			}
			if c := got[fe]; !c.Deleted {
				t.Errorf("resumed: fe's change %+v, want a deletion", c)
			}
			if _, ok := got[fg1]; ok {
				t.Errorf("resumed: FG1, delivered before the cursor, came again: %+v", got)
			}
			run.stop(t)

			parts := strings.Split(cursor, ":")
			other := strings.Join([]string{parts[0], parts[1], "dc9.example.test", parts[3]}, ":")
			damaged := strings.Join([]string{parts[0], parts[1], parts[2], base64.RawURLEncoding.EncodeToString([]byte("garbage"))}, ":")
			for _, bad := range []string{other, damaged} {
				run = startWatch(t, openFeed(t, src, mode), bad)
				d := run.next(t, 10*time.Second)
				if !d.batch.Full || d.batch.Reason == "" || d.batch.Cursor == "" {
					t.Errorf("cursor %q: first batch %+v, want Full with a reason and a new cursor", bad, d.batch)
				} else {
					t.Logf("cursor %q: %s", bad, d.batch.Reason)
				}
				modify(t, admin, "CN=FG1,"+groups, func(m *goldap.ModifyRequest) { m.Replace("description", []string{bad}) })
				run.waitFor(t, fg1, time.Time{}, 10*time.Second)
				run.stop(t)
			}
		})
	}
}

// TestADReadEntries: ReadEntries of every id equals the full Read, the group of 1,600 members
// (range retrieval) included, with client-side and server-side nesting.
func TestADReadEntries(t *testing.T) {
	s := adSamba(t)
	for _, nested := range []string{ldap.NestedClient, ldap.NestedServer} {
		t.Run(nested, func(t *testing.T) {
			cfg := adConfig(s)
			cfg.Groups.Nested = nested
			src, err := cfg.Open(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			checkReadEntries(t, src, "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002")
		})
	}
}

// TestADFeedNonAdmin: an account without special rights gets DirSync with the object-security
// flag and sees an edit; it is not shown tombstones on Samba, and the feed says so.
func TestADFeedNonAdmin(t *testing.T) {
	s := adSamba(t)
	admin := adminConn(t, s.URL, ldaptest.SambaAdmin, ldaptest.SambaPassword)
	users, groups, _ := adFeedFixture(t, admin, "reader")
	cfg := adConfig(s)
	cfg.BindDN, cfg.BindPassword = "scimreader@example.test", "Reader-Passw0rd!x"
	cfg.Users.BaseDN, cfg.Groups.BaseDN = users, groups
	cfg.Feed.PollInterval = 200 * time.Millisecond
	var logs bytes.Buffer
	src, err := cfg.Open(slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	run := startWatch(t, openFeed(t, src, ldap.FeedDirSync), "")
	run.next(t, 10*time.Second)
	start := time.Now()
	modify(t, admin, "CN=fa,"+users, func(m *goldap.ModifyRequest) { m.Replace("title", []string{"Reader-seen"}) })
	got, _, _ := run.waitFor(t, idOf(t, admin, "CN=fa,"+users, "objectGUID"), start, 10*time.Second)
	if got.Kind != connectors.ChangeUser || got.Deleted {
		t.Errorf("change %+v, want a user change", got)
	}
	if !strings.Contains(logs.String(), "may not be shown tombstones") {
		t.Errorf("no warning that deletions go unseen; logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "Reader-Passw0rd") {
		t.Errorf("the bind password is in the logs:\n%s", logs.String())
	}
}
