package ldap_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

// delivered is one batch as the test saw it: with the feed's poll count when fn ran.
type delivered struct {
	batch connectors.ChangeBatch
	poll  int64
	at    time.Time
}

// watchRun runs a feed's Watch in the background and collects its batches.
type watchRun struct {
	fd      connectors.Feed
	batches chan delivered
	cancel  context.CancelFunc
	done    chan error

	mu     sync.Mutex
	cursor string
}

func startWatch(t *testing.T, fd connectors.Feed, cursor string) *watchRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &watchRun{fd: fd, batches: make(chan delivered, 1000), cancel: cancel, done: make(chan error, 1), cursor: cursor}
	go func() {
		r.done <- fd.Watch(ctx, cursor, func(b connectors.ChangeBatch) error {
			if b.Cursor != "" {
				r.mu.Lock()
				r.cursor = b.Cursor
				r.mu.Unlock()
			}
			r.batches <- delivered{batch: b, poll: ldap.FeedPolls(fd), at: time.Now()}
			return nil
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// lastCursor is the cursor of the last batch delivered.
func (r *watchRun) lastCursor() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursor
}

// stop ends the watch; Watch must return the context's error.
func (r *watchRun) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v after its context ended, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("Watch did not return within 30s of its context ending")
	}
	_ = r.fd.Close()
}

// next returns the next batch, failing the test after timeout.
func (r *watchRun) next(t *testing.T, timeout time.Duration) delivered {
	t.Helper()
	select {
	case d := <-r.batches:
		return d
	case err := <-r.done:
		t.Fatalf("Watch ended: %v", err)
	case <-time.After(timeout):
		t.Fatalf("no batch within %v", timeout)
	}
	return delivered{}
}

// waitFor reads batches until one holds a change of id; it returns that change, the batch
// and every change seen on the way. Batches delivered before since are passed over.
func (r *watchRun) waitFor(t *testing.T, id string, since time.Time, timeout time.Duration) (connectors.Change, delivered, []connectors.Change) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []connectors.Change
	for {
		d := r.next(t, time.Until(deadline))
		if d.batch.Full {
			t.Fatalf("unexpected Full batch: %s", d.batch.Reason)
		}
		if d.at.Before(since) {
			continue
		}
		seen = append(seen, d.batch.Changes...)
		for _, c := range d.batch.Changes {
			if c.ID == id {
				return c, d, seen
			}
		}
	}
}

// changeStep is one directory edit and the change the feed must report for it.
type changeStep struct {
	name string
	// do makes the edit, calls edited right after it, and returns the id of the changed entry.
	do   func(t *testing.T, edited func()) string
	kind connectors.ChangeKind
	del  bool
}

// feedFigures is what a run of steps measured.
type feedFigures struct {
	latencies []time.Duration
	requests  []int64
}

// runSteps makes each edit and waits for its change; beforePoll, when set, returns the proxy's
// count at the start of the given poll (polling feeds: requests are counted from the poll that
// saw the change). Each changed entry is then read with ReadEntries; the requests from the edit
// (or that poll) to the end of that read must be at most 5.
func runSteps(t *testing.T, run *watchRun, src connectors.Source, proxy *ldaptest.Proxy, pollStart func(int64) int64, steps []changeStep, timeout time.Duration) feedFigures {
	t.Helper()
	var fig feedFigures
	for _, st := range steps {
		before := proxy.Requests()
		p0 := ldap.FeedPolls(run.fd)
		start := time.Now()
		var edited time.Time
		id := st.do(t, func() { edited = time.Now() })
		got, d, _ := run.waitFor(t, id, start, timeout)
		latency := d.at.Sub(edited)
		want := connectors.Change{Kind: st.kind, ID: id, Deleted: st.del}
		if diff := cmp.Diff(got, want, cmpopts.IgnoreFields(connectors.Change{}, "At")); diff != "" {
			t.Errorf("%s: change (-got +want):\n%s", st.name, diff)
		}
		if pollStart != nil {
			// Within one poll: the first poll that started after the edit, at the latest.
			if d.poll > p0+1 {
				t.Errorf("%s: seen in poll %d, the edit was made during poll %d", st.name, d.poll, p0)
			}
			before = pollStart(d.poll)
		}
		if !st.del {
			ids := [2][]string{}
			if st.kind == connectors.ChangeUser {
				ids[0] = []string{id}
			} else {
				ids[1] = []string{id}
			}
			dir, missing, err := src.(connectors.TargetedReader).ReadEntries(context.Background(), ids[0], ids[1])
			if err != nil || len(missing) > 0 || len(dir.Users)+len(dir.Groups) != 1 {
				t.Errorf("%s: ReadEntries(%v): %d users, %d groups, missing %v, %v; want the one entry", st.name, ids, len(dir.Users), len(dir.Groups), missing, err)
			}
		}
		n := proxy.Requests() - before
		if n > 5 {
			t.Errorf("%s: %d LDAP requests from the edit to its entry read, want at most 5", st.name, n)
		}
		fig.latencies = append(fig.latencies, latency)
		fig.requests = append(fig.requests, n)
		t.Logf("%s: seen %v after the edit (edit took %v), %d LDAP requests", st.name, latency.Round(time.Millisecond), edited.Sub(start).Round(time.Millisecond), n)
	}
	return fig
}

// checkReadEntries compares ReadEntries of every id of a full Read (plus one unknown id of
// each kind) with that Read.
func checkReadEntries(t *testing.T, src connectors.Source, unknownUser, unknownGroup string) {
	t.Helper()
	full, err := src.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	var uids, gids []string
	for _, u := range full.Users {
		uids = append(uids, u.ID)
	}
	for _, g := range full.Groups {
		gids = append(gids, g.ID)
	}
	dir, missing, err := src.(connectors.TargetedReader).ReadEntries(context.Background(), append(uids, unknownUser), append(gids, unknownGroup))
	if err != nil {
		t.Fatalf("ReadEntries: %v", err)
	}
	if diff := cmp.Diff(dir, full); diff != "" {
		t.Errorf("ReadEntries of every id (-got +want the full Read):\n%s", diff)
	}
	slices.Sort(missing)
	want := []string{unknownUser, unknownGroup}
	slices.Sort(want)
	if diff := cmp.Diff(missing, want); diff != "" {
		t.Errorf("missing (-got +want):\n%s", diff)
	}
}

// adminConn binds as the given admin over plain LDAP.
func adminConn(t *testing.T, url, dn, pw string) *goldap.Conn {
	t.Helper()
	c, err := goldap.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(dn, pw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// idOf reads an entry's id attribute (rendered as the connector renders it).
func idOf(t *testing.T, c *goldap.Conn, dn, attr string) string {
	t.Helper()
	res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read %s of %q: %v", attr, dn, err)
	}
	raw := res.Entries[0].GetRawAttributeValue(attr)
	if len(raw) == 16 {
		s, err := ldap.GUIDString(raw)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return string(raw)
}

func modify(t *testing.T, c *goldap.Conn, dn string, f func(*goldap.ModifyRequest)) {
	t.Helper()
	m := goldap.NewModifyRequest(dn, nil)
	f(m)
	if err := c.Modify(m); err != nil {
		t.Fatalf("modify %q: %v", dn, err)
	}
}

func moveDN(t *testing.T, c *goldap.Conn, dn, rdn, superior string) {
	t.Helper()
	if err := c.ModifyDN(goldap.NewModifyDNRequest(dn, rdn, true, superior)); err != nil {
		t.Fatalf("modrdn %q: %v", dn, err)
	}
}
