package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// env is one emulator, one client, one state file and a desired snapshot the test edits.
type env struct {
	t      *testing.T
	srv    *emulatortest.Server
	client *client.Client
	st     state.Store
	path   string

	mu      sync.Mutex
	desired scim.Snapshot
	readErr error
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := emulatortest.Start(t, emulator.Options{})
	c, err := client.New(client.Config{
		BaseURL: srv.URL,
		Token:   func(context.Context) (string, error) { return srv.Token, nil },
		Retry:   client.RetryPolicy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, client: c, path: filepath.Join(t.TempDir(), "state.db")}
	e.open()
	return e
}

func (e *env) open() {
	st, err := state.Open(context.Background(), e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.t.Cleanup(func() { st.Close() })
}

func (e *env) set(s scim.Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.desired = s
}

func (e *env) reconciler(mod ...func(*reconcile.Config)) *reconcile.Reconciler {
	cfg := reconcile.Config{
		Desired: func(context.Context) (scim.Snapshot, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.desired, e.readErr
		},
		Target: e.client,
		Reader: e.client,
		State:  e.st,
		Guards: plan.Guards{MaxDeletes: -1, MaxDeletePercent: -1},
	}
	for _, m := range mod {
		m(&cfg)
	}
	r, err := reconcile.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) run(r *reconcile.Reconciler, opts reconcile.RunOptions) *reconcile.Result {
	e.t.Helper()
	res, err := r.RunOnce(context.Background(), opts)
	if err != nil {
		e.t.Fatalf("run: %v (errors %v)", err, res.Errors)
	}
	return res
}

// writes counts the write requests the emulator received.
func writes(s emulator.Stats) int64 {
	var n int64
	for k, v := range s {
		if strings.HasPrefix(k, "scim.") && (strings.Contains(k, "Create") || strings.Contains(k, "Patch") ||
			strings.Contains(k, "Replace") || strings.Contains(k, "Delete") || strings.Contains(k, "Put")) {
			n += v
		}
	}
	return n
}

func total(s emulator.Stats) int64 {
	var n int64
	for k, v := range s {
		if strings.HasPrefix(k, "scim.") || strings.HasPrefix(k, "identitystore.") {
			n += v
		}
	}
	return n
}

// view is the target as a person would check it: users by userName, groups by name with their
// members' userNames.
type view struct {
	Users  map[string]string   // userName -> "externalId email active"
	Groups map[string][]string // displayName -> member userNames
}

func (e *env) view() view {
	e.t.Helper()
	d, err := e.srv.Emu.Dump()
	if err != nil {
		e.t.Fatal(err)
	}
	v := view{Users: map[string]string{}, Groups: map[string][]string{}}
	names := map[string]string{}
	for _, u := range d.Users {
		if _, dup := v.Users[strings.ToLower(u.UserName)]; dup {
			e.t.Fatalf("duplicate user %q", u.UserName)
		}
		v.Users[strings.ToLower(u.UserName)] = fmt.Sprintf("%s %s %v", u.ExternalID, u.Email, u.Active)
		names[u.ID] = u.UserName
	}
	for _, g := range d.Groups {
		if _, dup := v.Groups[g.DisplayName]; dup {
			e.t.Fatalf("duplicate group %q", g.DisplayName)
		}
		members := []string{}
		for _, m := range g.Members {
			members = append(members, names[m])
		}
		sort.Strings(members)
		v.Groups[g.DisplayName] = members
	}
	return v
}

func person(ext, name string) scim.User {
	return scim.User{ExternalID: ext, UserName: name + "@example.com", DisplayName: strings.ToUpper(name[:1]) + name[1:],
		GivenName: name, FamilyName: "Example", Email: name + "@example.com", Active: true,
		Enterprise: scim.Enterprise{Department: "Engineering"}}
}

func company() scim.Snapshot {
	return scim.Snapshot{
		Users: []scim.User{person("u1", "alice"), person("u2", "bob"), person("u3", "carol"), person("u4", "dave")},
		Groups: []scim.Group{
			{ExternalID: "g-admins", DisplayName: "Administrators", Members: []string{"u1"}},
			{ExternalID: "g-finance", DisplayName: "Finance", Members: []string{"u2", "u3"}},
			{ExternalID: "g-eng", DisplayName: "Engineering", Members: []string{"u1", "u3", "u4"}},
		},
	}
}

func TestSyncLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.reconciler()
	e.set(company())

	res := e.run(r, reconcile.RunOptions{})
	if res.Counts.Created != 7 || res.Counts.MemberAdds != 6 {
		t.Fatalf("initial counts = %+v, want 7 created, 6 member adds", res.Counts)
	}
	want := view{
		Users: map[string]string{
			"alice@example.com": "u1 alice@example.com true", "bob@example.com": "u2 bob@example.com true",
			"carol@example.com": "u3 carol@example.com true", "dave@example.com": "u4 dave@example.com true",
		},
		Groups: map[string][]string{
			"Administrators": {"alice@example.com"},
			"Finance":        {"bob@example.com", "carol@example.com"},
			"Engineering":    {"alice@example.com", "carol@example.com", "dave@example.com"},
		},
	}
	if diff := cmp.Diff(want, e.view()); diff != "" {
		t.Fatalf("after initial sync (-want +got):\n%s", diff)
	}
	stats := e.srv.Emu.Stats()
	if got := writes(stats); got != 7 {
		t.Errorf("initial sync sent %d writes, want 7 (4 users + 3 groups carrying their members): %v", got, stats)
	}

	e.srv.Emu.ResetStats()
	res = e.run(r, reconcile.RunOptions{})
	if !res.Plan.Empty() || writes(e.srv.Emu.Stats()) != 0 {
		t.Fatalf("no-change run wrote: plan %+v, stats %v", res.Plan.Changes, e.srv.Emu.Stats())
	}

	// Rename and email change of alice, rename of Finance: updates in place, memberships kept.
	d := company()
	d.Users[0].UserName, d.Users[0].Email = "alice.smith@example.com", "alice.smith@example.com"
	d.Groups[1].DisplayName = "Finance & Accounting"
	e.set(d)
	e.srv.Emu.ResetStats()
	e.run(r, reconcile.RunOptions{})
	st := e.srv.Emu.Stats()
	if st["scim.DeleteUser"]+st["scim.CreateUser"]+st["scim.DeleteGroup"]+st["scim.CreateGroup"] != 0 || writes(st) != 2 {
		t.Fatalf("rename should be one user update and one group PATCH, got %v", st)
	}
	v := e.view()
	if diff := cmp.Diff([]string{"alice.smith@example.com"}, v.Groups["Administrators"]); diff != "" {
		t.Errorf("alice lost her membership on rename: Administrators (-want +got):\n%s", diff)
	}
	if got := v.Groups["Finance & Accounting"]; len(got) != 2 {
		t.Errorf("renamed group lost members: %v", v.Groups)
	}

	// Suspend bob, move carol from Finance to Administrators, dave leaves.
	d.Users[1].Active = false
	d.Groups[1].Members = []string{"u2"}
	d.Groups[0].Members = []string{"u1", "u3"}
	d.Users = slices.Delete(d.Users, 3, 4)
	d.Groups[2].Members = []string{"u1", "u3"}
	e.set(d)
	res = e.run(r, reconcile.RunOptions{})
	if res.Counts.Deleted != 1 || res.Counts.Disabled != 1 || res.Counts.Updated != 0 {
		t.Errorf("counts = %+v, want 1 deleted (dave), 1 disabled (bob, suspended in the directory), 0 updated", res.Counts)
	}
	v = e.view()
	if v.Users["bob@example.com"] != "u2 bob@example.com false" {
		t.Errorf("bob not suspended: %q", v.Users["bob@example.com"])
	}
	if _, ok := v.Users["dave@example.com"]; ok {
		t.Error("dave still exists")
	}
	if diff := cmp.Diff([]string{"alice.smith@example.com", "carol@example.com"}, v.Groups["Administrators"]); diff != "" {
		t.Errorf("Administrators (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bob@example.com"}, v.Groups["Finance & Accounting"]); diff != "" {
		t.Errorf("Finance (-want +got):\n%s", diff)
	}
	if p := e.run(r, reconcile.RunOptions{}).Plan; !p.Empty() {
		t.Errorf("did not converge: %+v", p.Changes)
	}
}

func TestUnmanagedObjectsAreLeftAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	is := identitystore.New(identitystore.Options{
		BaseEndpoint: aws.String(e.srv.IdentityStoreEndpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	manual, err := is.CreateUser(ctx, &identitystore.CreateUserInput{
		IdentityStoreId: aws.String(e.srv.StoreID), UserName: aws.String("break-glass"), DisplayName: aws.String("Break Glass"),
		Name: &istypes.Name{GivenName: aws.String("Break"), FamilyName: aws.String("Glass")},
	})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := is.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: aws.String(e.srv.StoreID), DisplayName: aws.String("AWSControlTowerAdmins")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{IdentityStoreId: aws.String(e.srv.StoreID),
		GroupId: ct.GroupId, MemberId: &istypes.MemberIdMemberUserId{Value: *manual.UserId}}); err != nil {
		t.Fatal(err)
	}
	r := e.reconciler()
	snap := company()
	snap.Users = append(snap.Users, person("u9", "break-glass")) // clashes with the manual user's name? no: different userName
	e.set(snap)
	res := e.run(r, reconcile.RunOptions{})
	if res.Plan.UnmanagedUsers != 1 || res.Plan.UnmanagedGroups != 1 {
		t.Errorf("unmanaged = %d users %d groups, want 1 and 1", res.Plan.UnmanagedUsers, res.Plan.UnmanagedGroups)
	}
	e.set(scim.Snapshot{Users: snap.Users[:1]}) // everything else leaves, every group too
	e.run(r, reconcile.RunOptions{AllowDeletes: 100, AllowEmptySource: true})
	v := e.view()
	if diff := cmp.Diff([]string{"break-glass"}, v.Groups["AWSControlTowerAdmins"]); diff != "" {
		t.Errorf("Control Tower group touched (-want +got):\n%s", diff)
	}
	if _, ok := v.Users["break-glass"]; !ok {
		t.Error("manual user deleted")
	}
	if len(v.Users) != 2 || len(v.Groups) != 1 {
		t.Errorf("got %+v, want alice and the manual user, and only the Control Tower group", v)
	}
}

func TestGuardBlocksMassDeletion(t *testing.T) {
	e := newEnv(t)
	r := e.reconciler(func(c *reconcile.Config) { c.Guards = plan.DefaultGuards })
	var snap scim.Snapshot
	for i := range 20 {
		snap.Users = append(snap.Users, person(fmt.Sprint("u", i), fmt.Sprint("user", i)))
	}
	e.set(snap)
	e.run(r, reconcile.RunOptions{})
	shrunk := snap
	shrunk.Users = snap.Users[:12] // a filter mistake: 40% gone
	e.set(shrunk)
	e.srv.Emu.ResetStats()
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{})
	var be *plan.BlockedError
	if !errors.As(err, &be) || res.Result != reconcile.ResultBlocked {
		t.Fatalf("err = %v, result %q; want blocked", err, res.Result)
	}
	if w := writes(e.srv.Emu.Stats()); w != 0 {
		t.Fatalf("a blocked run wrote %d requests", w)
	}
	res = e.run(r, reconcile.RunOptions{AllowDeletes: 8})
	if res.Counts.Deleted != 8 {
		t.Errorf("allowed run deleted %d, want 8", res.Counts.Deleted)
	}
	e.set(scim.Snapshot{})
	if _, err := r.RunOnce(context.Background(), reconcile.RunOptions{AllowDeletes: 5}); !errors.As(err, &be) {
		t.Fatalf("an empty source must be blocked, got %v", err)
	}
}

func TestFailedSourceReadChangesNothing(t *testing.T) {
	e := newEnv(t)
	r := e.reconciler()
	e.set(company())
	e.run(r, reconcile.RunOptions{})
	e.mu.Lock()
	e.readErr = errors.New("ldap: connection reset by peer on page 3")
	e.mu.Unlock()
	e.srv.Emu.ResetStats()
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{})
	if !errors.Is(err, reconcile.ErrSourceRead) || res.Result != reconcile.ResultFailed {
		t.Fatalf("err = %v, result %q", err, res.Result)
	}
	if n := total(e.srv.Emu.Stats()); n != 0 {
		t.Errorf("a failed source read made %d target requests", n)
	}
	runs, err := e.st.Runs(context.Background(), 1)
	if err != nil || runs[0].Result != state.ResultFailed {
		t.Fatalf("run history = %+v, %v", runs, err)
	}
}

func TestTrustedStateMakesNoRequests(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	r := e.reconciler(func(c *reconcile.Config) {
		c.FullReconcileEvery = time.Hour
		c.Now = func() time.Time { return now }
	})
	e.set(company())
	if res := e.run(r, reconcile.RunOptions{}); !res.FullRead {
		t.Fatal("the first run must read the target")
	}
	e.srv.Emu.ResetStats()
	now = now.Add(10 * time.Minute)
	if res := e.run(r, reconcile.RunOptions{}); res.FullRead || !res.Plan.Empty() {
		t.Fatalf("second run: full read %v, plan %+v", res.FullRead, res.Plan.Changes)
	}
	if n := total(e.srv.Emu.Stats()); n != 0 {
		t.Fatalf("a trusted no-change run made %d requests: %v", n, e.srv.Emu.Stats())
	}
	// A source change under trust: exactly the writes it needs.
	d := company()
	d.Users[1].Email = "robert@example.com"
	d.Groups[0].Members = []string{"u1", "u2"}
	e.set(d)
	e.run(r, reconcile.RunOptions{})
	if got := total(e.srv.Emu.Stats()); got != 2 {
		t.Errorf("trusted change made %d requests, want 2: %v", got, e.srv.Emu.Stats())
	}
	// Drift made in the console is repaired by the next full read.
	ctx := context.Background()
	u, err := e.client.FindUser(ctx, "userName", "carol@example.com")
	if err != nil || u == nil {
		t.Fatal(u, err)
	}
	drifted := u.User
	drifted.DisplayName = "Edited In Console"
	if err := e.client.ReplaceUser(ctx, u.ID, drifted, ""); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	res := e.run(r, reconcile.RunOptions{})
	if !res.FullRead || res.Counts.Updated != 1 {
		t.Fatalf("full reconcile: full %v counts %+v", res.FullRead, res.Counts)
	}
}

// lossy forwards to a target but loses the answer of some creates, as a dropped connection does
// after the target acted.
type lossy struct {
	reconcile.Target
	lose atomic.Int32
}

func (l *lossy) CreateUser(ctx context.Context, u scim.User, mgr string) (string, error) {
	id, err := l.Target.CreateUser(ctx, u, mgr)
	if err == nil && l.lose.Add(-1) >= 0 {
		return "", errors.New("read tcp: connection reset by peer")
	}
	return id, err
}

func TestLostCreateAnswersConverge(t *testing.T) {
	e := newEnv(t)
	l := &lossy{Target: e.client}
	l.lose.Store(2)
	r := e.reconciler(func(c *reconcile.Config) { c.Target = l })
	e.set(company())
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{})
	if !errors.Is(err, reconcile.ErrPartial) || res.Counts.Failed != 2 {
		t.Fatalf("first run: err %v counts %+v", err, res.Counts)
	}
	// The next run finds the two users through their pending intents, and finishes the groups.
	res = e.run(r, reconcile.RunOptions{})
	if len(res.Plan.Claims) != 2 {
		t.Errorf("claims = %+v, want the two lost creates", res.Plan.Claims)
	}
	d, _ := e.srv.Emu.Dump()
	if len(d.Users) != 4 || len(d.Groups) != 3 {
		t.Fatalf("target holds %s, want 4 users and 3 groups without duplicates", d.Counts())
	}
	if p := e.run(r, reconcile.RunOptions{}).Plan; !p.Empty() {
		t.Errorf("not converged: %+v", p.Changes)
	}
}

func TestInterruptedRunConverges(t *testing.T) {
	e := newEnv(t)
	var snap scim.Snapshot
	var members []string
	for i := range 300 {
		u := person(fmt.Sprintf("u%03d", i), fmt.Sprintf("user%03d", i))
		snap.Users = append(snap.Users, u)
		members = append(members, u.ExternalID)
	}
	snap.Groups = []scim.Group{{ExternalID: "g-all", DisplayName: "Everyone", Members: members}}
	e.set(snap)
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	r := e.reconciler(func(c *reconcile.Config) {
		c.Concurrency = 4
		c.Progress = func(done, total int) {
			if n.Add(1) == 120 {
				cancel() // SIGTERM mid-run: in-flight requests finish and are recorded
			}
		}
	})
	res, _ := r.RunOnce(ctx, reconcile.RunOptions{})
	if res.Counts.Created == 0 || res.Counts.Created >= 300 {
		t.Fatalf("interrupted run created %d; the test wants an interruption part-way", res.Counts.Created)
	}
	// A new process: reopen the state file.
	e.st.Close()
	e.open()
	r = e.reconciler()
	e.run(r, reconcile.RunOptions{})
	d, _ := e.srv.Emu.Dump()
	if len(d.Users) != 300 || len(d.Groups) != 1 || len(d.Groups[0].Members) != 300 {
		t.Fatalf("after recovery: %s, %d members", d.Counts(), len(d.Groups[0].Members))
	}
	if err := e.st.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := e.run(r, reconcile.RunOptions{}).Plan; !p.Empty() {
		t.Errorf("not converged: %+v", p.Changes)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newEnv(t)
	r := e.reconciler()
	e.set(company())
	res := e.run(r, reconcile.RunOptions{DryRun: true})
	if res.Plan.Empty() || res.Counts.Created != 7 {
		t.Fatalf("dry-run plan = %+v counts %+v", res.Plan.Summarize(100), res.Counts)
	}
	if w := writes(e.srv.Emu.Stats()); w != 0 {
		t.Fatalf("dry run wrote %d requests", w)
	}
	objs, _ := e.st.Objects(context.Background(), state.KindUser)
	if len(objs) != 0 {
		t.Fatalf("dry run recorded ownership of %d users", len(objs))
	}
}
