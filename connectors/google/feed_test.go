package google

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	admin "google.golang.org/api/admin/directory/v1"

	"github.com/scimbridge/scimbridge/connectors"
)

// clock is a manual clock shared by the fake and the feed.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// feedRun is a feed watching in the background, polled by hand: each poll waits for the
// feed to be idle, advances the clock, fires the poll timer and waits until the poll is done.
type feedRun struct {
	t       *testing.T
	f       *feed
	clock   *clock
	idle    chan struct{}
	ticks   chan time.Time
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
	batches []connectors.ChangeBatch
	last    string // the last cursor delivered
	count   int    // batches delivered
}

const testLag = 2 * time.Minute

// feedEnv is a fake with the sample directory on a manual clock, and a source that read it.
func feedEnv(t *testing.T, edit func(*Config)) (*env, *source, *clock) {
	t.Helper()
	e := newEnv(t)
	seedSmall(e.fake)
	clk := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e.fake.SetClock(clk.Now)
	e.fake.SetReportLag(testLag)
	s := e.open(t, edit)
	s.now = clk.Now
	if _, err := s.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e, s, clk
}

// watch opens the source's feed and watches from cursor; it returns once the first poll is
// done.
func watch(t *testing.T, s *source, clk *clock, cursor string) *feedRun {
	t.Helper()
	fd, err := s.Feed(context.Background())
	if err != nil {
		t.Fatalf("Feed: %v", err)
	}
	r := &feedRun{t: t, f: fd.(*feed), clock: clk, idle: make(chan struct{}), ticks: make(chan time.Time), done: make(chan error, 1)}
	r.f.after = func(time.Duration) <-chan time.Time { r.idle <- struct{}{}; return r.ticks }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- r.f.Watch(ctx, cursor, func(b connectors.ChangeBatch) error {
			r.mu.Lock()
			r.batches = append(r.batches, b)
			r.count++
			if b.Cursor != "" {
				r.last = b.Cursor
			}
			r.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { r.stop() })
	r.wait()
	return r
}

// wait waits until the feed is idle (its poll done).
func (r *feedRun) wait() {
	r.t.Helper()
	select {
	case <-r.idle:
	case err := <-r.done:
		r.done <- err
		r.t.Fatalf("Watch returned: %v", err)
	case <-time.After(20 * time.Second):
		r.t.Fatal("the feed did not finish its poll")
	}
}

// poll advances the clock by d, lets the feed poll, and returns the changes delivered since
// the previous call.
func (r *feedRun) poll(d time.Duration) []connectors.Change {
	r.t.Helper()
	r.clock.Advance(d)
	r.ticks <- r.clock.Now()
	r.wait()
	return r.take()
}

func (r *feedRun) take() []connectors.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []connectors.Change
	for _, b := range r.batches {
		out = append(out, b.Changes...)
	}
	r.batches = nil
	return out
}

// cursor returns the last cursor delivered.
func (r *feedRun) cursor() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *feedRun) stop() error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		return err
	case <-time.After(20 * time.Second):
		r.t.Fatal("Watch did not return after cancel")
	}
	return nil
}

// changeOpts compares changes without their times.
var changeOpts = []cmp.Option{cmpopts.IgnoreFields(connectors.Change{}, "At"), cmpopts.EquateEmpty(),
	cmpopts.SortSlices(func(a, b connectors.Change) bool {
		return string(a.Kind)+a.ID+strconv.FormatBool(a.Deleted) < string(b.Kind)+b.ID+strconv.FormatBool(b.Deleted)
	})}

func group(id string) connectors.Change {
	return connectors.Change{Kind: connectors.ChangeGroup, ID: id}
}
func user(id string) connectors.Change { return connectors.Change{Kind: connectors.ChangeUser, ID: id} }

// TestFeedGroupChanges makes each kind of group change through the fake's admin methods and
// checks that the feed sees it once the fake's reporting lag has passed, not before, and
// within the lag plus one poll interval.
func TestFeedGroupChanges(t *testing.T) {
	e, s, clk := feedEnv(t, nil)
	r := watch(t, s, clk, "")
	if got := r.take(); len(got) != 0 {
		t.Fatalf("first poll from now delivered %v", got)
	}
	const interval = 30 * time.Second
	steps := []struct {
		name string
		do   func()
		want []connectors.Change
	}{
		{"group created", func() {
			e.fake.CreateGroup(&admin.Group{Id: "g3", Email: "sre@example.com", Name: "SRE"},
				&admin.Member{Id: "u1", Email: "alice@example.com", Type: "USER"})
		}, []connectors.Change{group("g3")}},
		{"group renamed", func() { e.fake.RenameGroup("g2", "Platform Team") }, []connectors.Change{group("g2")}},
		{"group email changed", func() { e.fake.ChangeGroupEmail("g2", "plat@example.com") }, []connectors.Change{group("g2")}},
		{"member added", func() {
			e.fake.AddMember("g1", &admin.Member{Id: "u2", Email: "bob@example.com", Type: "USER"})
		}, []connectors.Change{group("g1")}},
		{"member removed", func() { e.fake.RemoveMember("g2", "u2") }, []connectors.Change{group("g2")}},
		{"group deleted", func() { e.fake.DeleteGroup("g3") }, []connectors.Change{{Kind: connectors.ChangeGroup, ID: "g3", Deleted: true}}},
		{"group renamed and its email changed in one poll", func() {
			e.fake.RenameGroup("g1", "Eng")
			e.fake.ChangeGroupEmail("g1", "engineering@example.com")
		}, []connectors.Change{group("g1")}},
		{"group replaced by a new one with its email", func() {
			e.fake.DeleteGroup("g1")
			e.fake.CreateGroup(&admin.Group{Id: "g7", Email: "engineering@example.com", Name: "Eng again"})
		}, []connectors.Change{{Kind: connectors.ChangeGroup, ID: "g1", Deleted: true}, group("g7")}},
		{"user created", func() {
			e.fake.CreateUser(&admin.User{Id: "u5", PrimaryEmail: "erin@example.com"})
		}, []connectors.Change{user("u5")}},
		{"user renamed", func() { e.fake.RenameUser("u5", "erin.e@example.com") }, []connectors.Change{user("u5")}},
		{"user suspended", func() { e.fake.SuspendUser("u2", true) }, []connectors.Change{user("u2")}},
		{"user deleted", func() { e.fake.DeleteUser("u5") }, []connectors.Change{{Kind: connectors.ChangeUser, ID: "u5", Deleted: true}}},
	}
	for _, st := range steps {
		st.do()
		// Polls until just before the lag ends see nothing.
		if got := r.poll(testLag - time.Second); len(got) != 0 {
			t.Errorf("%s: seen %v before the reporting lag passed", st.name, got)
		}
		got := r.poll(interval)
		if diff := cmp.Diff(got, st.want, changeOpts...); diff != "" {
			t.Errorf("%s: changes within lag + one poll (-got +want):\n%s", st.name, diff)
		}
		if got := r.poll(interval); len(got) != 0 {
			t.Errorf("%s: the next poll delivered again %v", st.name, got)
		}
	}
}

// TestFeedLateEvent delays one event past others already visible: the overlap catches it,
// and it is delivered once.
func TestFeedLateEvent(t *testing.T) {
	e, s, clk := feedEnv(t, nil)
	r := watch(t, s, clk, "")
	e.fake.DelayNextEvents(1, 4*time.Minute)
	e.fake.AddMember("g1", &admin.Member{Id: "u2", Email: "bob@example.com", Type: "USER"}) // late
	clk.Advance(time.Second)
	e.fake.RenameGroup("g2", "Platform Team")
	if got := r.poll(testLag + time.Minute); !cmp.Equal(got, []connectors.Change{group("g2")}, changeOpts...) {
		t.Errorf("after the lag: %v, want g2 only", got)
	}
	var late []connectors.Change
	for range 10 { // 5 minutes
		late = append(late, r.poll(30*time.Second)...)
	}
	if diff := cmp.Diff(late, []connectors.Change{group("g1")}, changeOpts...); diff != "" {
		t.Errorf("late event (-got +want):\n%s", diff)
	}
	for _, a := range e.fake.AdminEvents() {
		t.Logf("event %s %s", a.Id.Time, a.Events[0].Name)
	}
}

// TestFeedResumesFromCursor stops the feed, makes changes, and starts it again from the last
// cursor: the changes made meanwhile are delivered, those delivered before are not.
func TestFeedResumesFromCursor(t *testing.T) {
	e, s, clk := feedEnv(t, nil)
	r := watch(t, s, clk, "")
	e.fake.RenameGroup("g1", "Eng")
	if got := r.poll(testLag + time.Second); !cmp.Equal(got, []connectors.Change{group("g1")}, changeOpts...) {
		t.Fatalf("before the restart: %v", got)
	}
	cur := r.cursor()
	if err := r.stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch after cancel = %v", err)
	}
	e.fake.AddMember("g2", &admin.Member{Id: "u1", Email: "alice@example.com", Type: "USER"})
	e.fake.DeleteGroup("g1")
	clk.Advance(10 * time.Minute)
	// A restarted source that has not read the directory: it learns the emails in scope from
	// one listing of ids. g1 was deleted before that listing, so its DELETE_GROUP names an
	// email nothing knows any more: it is dropped (the engine's first run after a restart
	// reads the whole source, which removes g1).
	s2 := e.open(t, nil)
	s2.now = clk.Now
	r2 := watch(t, s2, clk, cur)
	want := []connectors.Change{group("g2")}
	if diff := cmp.Diff(r2.take(), want, changeOpts...); diff != "" {
		t.Errorf("first poll after the restart (-got +want):\n%s", diff)
	}
}

// TestFeedCursorExpired refuses cursors it cannot use with connectors.ErrCursorExpired.
func TestFeedCursorExpired(t *testing.T) {
	e, s, clk := feedEnv(t, nil)
	r := watch(t, s, clk, "")
	cur := r.cursor()
	_ = r.stop()
	other := e.open(t, func(c *Config) { c.Domain = "example.com" })
	other.now = clk.Now
	cases := []struct {
		name   string
		s      *source
		cursor string
		after  time.Duration
	}{
		{"of another scope", other, cur, 0},
		{"garbage", s, "not-a-cursor", 0},
		{"older than the retention", s, cur, 181 * 24 * time.Hour},
	}
	for _, tc := range cases {
		clk.Advance(tc.after)
		fd, err := tc.s.Feed(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		err = fd.Watch(context.Background(), tc.cursor, func(connectors.ChangeBatch) error { return nil })
		if !errors.Is(err, connectors.ErrCursorExpired) {
			t.Errorf("%s: Watch = %v, want ErrCursorExpired", tc.name, err)
		}
	}
}

// TestFeedPushedUsers hands a push notification to Verify while the feed watches: the user
// change is delivered at once, without a poll.
func TestFeedPushedUsers(t *testing.T) {
	e, s, clk := feedEnv(t, func(c *Config) {
		c.Watch = WatchConfig{Address: "https://hooks.example.com/google", Events: []string{"update", "delete"}}
	})
	s.after = func(time.Duration) <-chan time.Time { return nil } // no channel renewals
	if err := s.Watch(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := watch(t, s, clk, "")
	for _, c := range e.fake.Channels() {
		h, body, err := e.fake.Notify(c.Id, c.Params["event"], &admin.User{Id: "u2", PrimaryEmail: "bob@example.com"}, 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(h, body); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	var got []connectors.Change
	for len(got) < 2 && time.Now().Before(deadline) {
		got = append(got, r.take()...)
		time.Sleep(5 * time.Millisecond)
	}
	want := []connectors.Change{user("u2"), {Kind: connectors.ChangeUser, ID: "u2", Deleted: true}}
	if diff := cmp.Diff(got, want, changeOpts...); diff != "" {
		t.Errorf("pushed changes (-got +want):\n%s", diff)
	}
}

// TestFeedPushDelivered lets the fake push Users.Watch notifications to a webhook that hands
// them to Verify, as the service does: user changes reach the feed without waiting for the
// admin audit log's lag, and the targeted read costs one request.
func TestFeedPushDelivered(t *testing.T) {
	e, s, clk := feedEnv(t, func(c *Config) {
		c.Watch = WatchConfig{Address: "https://hooks.example.com/google"}
	})
	s.after = func(time.Duration) <-chan time.Time { return nil } // no channel renewals
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := s.Verify(r.Header, body); err != nil {
			t.Errorf("Verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer hook.Close()
	e.fake.DeliverPushes(hook.Client(), func(string) string { return hook.URL })
	if err := s.Watch(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := watch(t, s, clk, "")
	e.fake.UpdateUser("u2", "CHANGE_LAST_NAME", func(u *admin.User) { u.Name.FamilyName = "Bauer" })
	e.fake.CreateUser(&admin.User{Id: "u5", PrimaryEmail: "erin@example.com"})
	e.fake.DeleteUser("u4")
	e.fake.WaitPushes()
	want := []connectors.Change{user("u2"), user("u5"), {Kind: connectors.ChangeUser, ID: "u4", Deleted: true}}
	var got []connectors.Change
	for deadline := time.Now().Add(10 * time.Second); len(got) < len(want) && time.Now().Before(deadline); {
		got = append(got, r.take()...)
		time.Sleep(5 * time.Millisecond)
	}
	if diff := cmp.Diff(got, want, changeOpts...); diff != "" {
		t.Errorf("pushed changes, before any poll (-got +want):\n%s", diff)
	}
	e.fake.ResetRequests()
	d, missing, err := s.ReadEntries(context.Background(), []string{"u2"}, nil)
	if err != nil || len(d.Users) != 1 || d.Users[0].Get("name.familyName") != "Bauer" || len(missing) != 0 {
		t.Errorf("targeted read = %+v, missing %v, err %v", d.Users, missing, err)
	}
	if n := len(e.fake.Requests()); n != 1 {
		t.Errorf("the targeted read of a pushed user change cost %d requests, want 1", n)
	}
}

// TestFeedSingleUserChangeRequests counts the Google requests a single user change costs
// through the Reports API path: the poll, the email lookup, and the targeted read.
func TestFeedSingleUserChangeRequests(t *testing.T) {
	e, s, clk := feedEnv(t, nil)
	r := watch(t, s, clk, "")
	e.fake.UpdateUser("u2", "CHANGE_FIRST_NAME", func(u *admin.User) { u.Name.GivenName = "Robert" })
	r.poll(testLag - time.Second)
	e.fake.ResetRequests()
	got := r.poll(30 * time.Second)
	if !cmp.Equal(got, []connectors.Change{user("u2")}, changeOpts...) {
		t.Fatalf("changes = %v", got)
	}
	d, _, err := s.ReadEntries(context.Background(), []string{"u2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Users) != 1 || d.Users[0].Get("name.givenName") != "Robert" {
		t.Errorf("targeted read = %+v", d.Users)
	}
	var paths []string
	for _, q := range e.fake.Requests() {
		paths = append(paths, q.Method+" "+q.Path)
	}
	t.Logf("requests for one user change: %d: %s", len(paths), strings.Join(paths, ", "))
	if len(paths) > 5 {
		t.Errorf("%d requests for one user change, want at most 5", len(paths))
	}
	if !slices.ContainsFunc(paths, func(p string) bool { return strings.Contains(p, "/admin/reports/v1/") }) {
		t.Errorf("no Reports API request among %v", paths)
	}
}

// TestFeedRequestsMatchDiscovery checks every request of the feed (its probe, polls over more
// than one page, email lookups) and of targeted reads (with a user query and custom schemas,
// and the id listing of a source without a full read) against the discovery documents of the
// Reports and Directory APIs.
func TestFeedRequestsMatchDiscovery(t *testing.T) {
	directory, reportsDoc := loadDiscovery(t), loadDiscoveryOf(t, "reports")
	edit := func(c *Config) {
		c.CustomSchemas = []string{"Employment"}
		c.UserQuery = "orgUnitPath='/Eng'"
		c.GroupQuery = "email:eng*"
	}
	e, s, clk := feedEnv(t, edit)
	e.fake.ResetRequests()
	r := watch(t, s, clk, "")
	for i := range 1001 {
		e.fake.RenameGroup("g2", "Platform "+strconv.Itoa(i))
	}
	e.fake.AddMember("g1", &admin.Member{Id: "u2", Email: "bob@example.com", Type: "USER"})
	if got := r.poll(testLag + time.Second); !cmp.Equal(got, []connectors.Change{group("g1"), group("g2")}, changeOpts...) {
		t.Errorf("changes = %v", got)
	}
	ctx := context.Background()
	if _, _, err := s.ReadEntries(ctx, []string{"u1", "u2"}, []string{"g1", "g2"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.open(t, edit).ReadEntries(ctx, []string{"u1"}, []string{"g1"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, q := range e.fake.Requests() {
		d := directory
		if strings.HasPrefix(q.Path, "/admin/reports/") {
			d = reportsDoc
		}
		seen[checkRequest(t, d, q)]++
	}
	for _, id := range []string{"reports.activities.list", "directory.users.get", "directory.users.list",
		"directory.groups.get", "directory.groups.list", "directory.members.list"} {
		if seen[id] == 0 {
			t.Errorf("no request exercised %s (seen %v)", id, seen)
		}
	}
	if seen["reports.activities.list"] < 3 {
		t.Errorf("activities.list requests = %d, want the probe and a poll of two pages at least", seen["reports.activities.list"])
	}
	t.Logf("requests checked per method: %v", seen)
}

// TestFeedNestedGroupBringsItsParents changes the members of a group outside group_query that
// a selected group expands: the selected group is reported changed too.
func TestFeedNestedGroupBringsItsParents(t *testing.T) {
	e, s, clk := feedEnv(t, func(c *Config) { c.GroupQuery = "email:eng*" })
	r := watch(t, s, clk, "")
	e.fake.AddMember("g2", &admin.Member{Id: "u1", Email: "alice@example.com", Type: "USER"})
	got := r.poll(testLag + time.Second)
	if diff := cmp.Diff(got, []connectors.Change{group("g1"), group("g2")}, changeOpts...); diff != "" {
		t.Errorf("changes (-got +want):\n%s", diff)
	}
	d, missing, err := s.ReadEntries(context.Background(), nil, []string{"g1", "g2"})
	if err != nil {
		t.Fatal(err)
	}
	full, err := e.open(t, func(c *Config) { c.GroupQuery = "email:eng*" }).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d.Groups, full.Groups, entryOpts); diff != "" {
		t.Errorf("targeted read of the parent differs from a full read (-got +want):\n%s", diff)
	}
	if !slices.Equal(missing, []string{"g2"}) {
		t.Errorf("missing = %v, want the unselected g2", missing)
	}
}

// TestFeedQuietCost polls a quiet directory for 10 minutes: one request per poll interval,
// and the cursor handed over every 5 minutes only.
func TestFeedQuietCost(t *testing.T) {
	e, s, clk := feedEnv(t, nil)
	r := watch(t, s, clk, "")
	e.fake.ResetRequests()
	r.mu.Lock()
	before := r.count
	r.mu.Unlock()
	for range 20 {
		if got := r.poll(DefaultPollInterval); len(got) != 0 {
			t.Errorf("a quiet poll delivered %v", got)
		}
	}
	r.mu.Lock()
	batches := r.count - before
	r.mu.Unlock()
	if got := len(e.fake.Requests()); got != 20 {
		t.Errorf("a quiet 10 minutes cost %d requests, want 20 (one poll per 30s)", got)
	}
	if batches != 2 {
		t.Errorf("a quiet 10 minutes delivered %d cursor batches, want 2 (one per 5 minutes)", batches)
	}
}

// TestFeedPollFailures lets one poll fail (retried at the next tick, nothing lost) and then
// three in a row (Watch returns the error, so that the engine falls back to full reads).
func TestFeedPollFailures(t *testing.T) {
	e, s, clk := feedEnv(t, func(c *Config) { c.MaxAttempts = 1 })
	r := watch(t, s, clk, "")
	const path = "/admin/reports/v1/activity/users/all/applications/admin"
	e.fake.RenameGroup("g1", "Eng")
	e.fake.FailPage(path, 1, 1, http.StatusServiceUnavailable, "backendError")
	if got := r.poll(testLag + time.Second); len(got) != 0 {
		t.Errorf("a failed poll delivered %v", got)
	}
	if got := r.poll(30 * time.Second); !cmp.Equal(got, []connectors.Change{group("g1")}, changeOpts...) {
		t.Errorf("the poll after a failure delivered %v, want g1", got)
	}
	e.fake.FailPage(path, 1, 3, http.StatusServiceUnavailable, "backendError")
	r.poll(30 * time.Second)
	r.poll(30 * time.Second)
	clk.Advance(30 * time.Second)
	r.ticks <- clk.Now()
	select {
	case err := <-r.done:
		if err == nil || !strings.Contains(err.Error(), "3 polls in a row failed") {
			t.Errorf("Watch = %v, want the failure after 3 polls", err)
		}
		r.cancel = nil
	case <-time.After(20 * time.Second):
		t.Fatal("Watch kept going after 3 failed polls")
	}
}

// TestFeedNeedsReportsAccess opens the feed where the admin audit log is refused: the error
// names the scope to delegate.
func TestFeedNeedsReportsAccess(t *testing.T) {
	e, s, _ := feedEnv(t, nil)
	e.fake.FailPage("/admin/reports/v1/activity/users/all/applications/admin", 1, 1, http.StatusForbidden, "forbidden")
	_, err := s.Feed(context.Background())
	if err == nil || !strings.Contains(err.Error(), "admin.reports.audit.readonly") {
		t.Errorf("Feed = %v, want an error naming the reports scope", err)
	}
}
