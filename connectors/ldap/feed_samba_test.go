package ldap_test

import (
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

// adFeedFixture makes OU=Feed-<tag> with users fa..fd and OU=FeedGroups-<tag> with FG1 >
// FG2 (nested) of its own, so that the edits leave the shared fixture alone.
func adFeedFixture(t *testing.T, admin *goldap.Conn, tag string) (users, groups string) {
	t.Helper()
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
		add("CN="+u+","+users, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {tag[:2] + u},
			"userAccountControl": {"544"}, "givenName": {u}, "sn": {"Feed"}})
	}
	add("CN=FG2,"+groups, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {tag[:2] + "FG2"}, "member": {"CN=fb," + users}})
	add("CN=FG1,"+groups, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {tag[:2] + "FG1"}, "member": {"CN=fa," + users, "CN=FG2," + groups}})
	return users, groups
}

func adSteps(admin *goldap.Conn, users, groups, tag string) []changeStep {
	id := func(t *testing.T, dn string) string { return idOf(t, admin, dn, "objectGUID") }
	return []changeStep{
		{name: "modify fa", kind: connectors.ChangeUser, do: func(t *testing.T, edited func()) string {
			modify(t, admin, "CN=fa,"+users, func(m *goldap.ModifyRequest) { m.Replace("title", []string{"Engineer"}) })
			edited()
			return id(t, "CN=fa,"+users)
		}},
		{name: "add fe", kind: connectors.ChangeUser, do: func(t *testing.T, edited func()) string {
			a := goldap.NewAddRequest("CN=fe,"+users, nil)
			a.Attribute("objectClass", []string{"user"})
			a.Attribute("sAMAccountName", []string{tag[:2] + "fe"})
			a.Attribute("userAccountControl", []string{"544"})
			if err := admin.Add(a); err != nil {
				t.Fatal(err)
			}
			edited()
			return id(t, "CN=fe,"+users)
		}},
		{name: "rename fb", kind: connectors.ChangeUser, do: func(t *testing.T, edited func()) string {
			moveDN(t, admin, "CN=fb,"+users, "CN=fb2", "")
			edited()
			return id(t, "CN=fb2,"+users)
		}},
		{name: "disable fa", kind: connectors.ChangeUser, do: func(t *testing.T, edited func()) string {
			modify(t, admin, "CN=fa,"+users, func(m *goldap.ModifyRequest) { m.Replace("userAccountControl", []string{"546"}) })
			edited()
			return id(t, "CN=fa,"+users)
		}},
		{name: "add a member to FG1", kind: connectors.ChangeGroup, do: func(t *testing.T, edited func()) string {
			modify(t, admin, "CN=FG1,"+groups, func(m *goldap.ModifyRequest) { m.Add("member", []string{"CN=fc," + users}) })
			edited()
			return id(t, "CN=FG1,"+groups)
		}},
		{name: "edit FG2, nested in FG1", kind: connectors.ChangeGroup, do: func(t *testing.T, edited func()) string {
			modify(t, admin, "CN=FG2,"+groups, func(m *goldap.ModifyRequest) { m.Add("member", []string{"CN=fd," + users}) })
			edited()
			return id(t, "CN=FG2,"+groups)
		}},
		{name: "move fc out of scope", del: true, do: func(t *testing.T, edited func()) string {
			moveDN(t, admin, "CN=fc,"+users, "CN=fc-"+tag, "OU=Outside,"+ldaptest.SambaBaseDN)
			edited()
			return id(t, "CN=fc-"+tag+",OU=Outside,"+ldaptest.SambaBaseDN)
		}},
		{name: "delete fd", del: true, do: func(t *testing.T, edited func()) string {
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
			users, groups := adFeedFixture(t, admin, mode)
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
			fig := runSteps(t, run, src, proxy, pollStart, adSteps(admin, users, groups, mode), 20*time.Second)
			t.Logf("%s at a 200ms poll: latency %v, requests %v", mode, fig.latencies, fig.requests)

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
			fd = openFeed(t, src, mode)
			run = startWatch(t, fd, cursor)
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
