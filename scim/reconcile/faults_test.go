package reconcile_test

// Target faults acted out by the emulator's knobs (issue 9): a 429 storm, injected 5xx, dropped
// connections, answers slower than the client's timeout, and creates whose answer is lost after
// the target acted (a 409 on the retry). After every scenario the target must equal the desired
// state exactly, and the objects made outside scimbridge must be untouched.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// faultEnv is a target with unmanaged objects made through the identitystore API, a client whose
// transport, timeout and limiter a scenario chooses, and a state file.
type faultEnv struct {
	t       *testing.T
	srv     *emulatortest.Server
	client  *client.Client
	st      state.Store
	desired scim.Snapshot
	// manual is the unmanaged part of the target as it was before the scenario.
	manual emulator.Dump
	// attempts counts the client's request attempts that failed without an HTTP answer.
	noAnswer atomic.Int64
}

type faultOptions struct {
	timeout   time.Duration
	transport http.RoundTripper
	limiter   *client.Limiter
}

// ObserveRequest implements client.Observer.
func (f *faultEnv) ObserveRequest(_, _ string, status int, _ time.Duration, err error) {
	if err != nil && status == 0 {
		f.noAnswer.Add(1)
	}
}

func newFaultEnv(t *testing.T, o faultOptions) *faultEnv {
	t.Helper()
	f := &faultEnv{t: t, srv: emulatortest.Start(t, emulator.Options{Seed: 9})}
	hc := client.DefaultHTTPClient()
	if o.timeout > 0 {
		hc.Timeout = o.timeout
	}
	if o.transport != nil {
		hc.Transport = o.transport
	}
	c, err := client.New(client.Config{
		BaseURL:    f.srv.URL,
		Token:      func(context.Context) (string, error) { return f.srv.Token, nil },
		HTTPClient: hc,
		Limiter:    o.limiter,
		Observer:   f,
		Retry:      client.RetryPolicy{MaxAttempts: 10, BaseDelay: 2 * time.Millisecond, MaxDelay: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.addUnmanaged()
	f.desired = faultCompany(60, 6)
	return f
}

// addUnmanaged makes a break-glass user and a Control Tower group holding it through the
// identitystore API, as an administrator or Control Tower would, and remembers them.
func (f *faultEnv) addUnmanaged() {
	f.t.Helper()
	ctx := context.Background()
	is := identitystore.New(identitystore.Options{
		BaseEndpoint: aws.String(f.srv.IdentityStoreEndpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	store := aws.String(f.srv.StoreID)
	u, err := is.CreateUser(ctx, &identitystore.CreateUserInput{IdentityStoreId: store, UserName: aws.String("break-glass"),
		DisplayName: aws.String("Break Glass"), Name: &istypes.Name{GivenName: aws.String("Break"), FamilyName: aws.String("Glass")}})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, name := range []string{"AWSControlTowerAdmins", "AWSSecurityAuditors"} {
		g, err := is.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: store, DisplayName: aws.String(name)})
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := is.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{IdentityStoreId: store,
			GroupId: g.GroupId, MemberId: &istypes.MemberIdMemberUserId{Value: *u.UserId}}); err != nil {
			f.t.Fatal(err)
		}
	}
	d, err := f.srv.Emu.Dump()
	if err != nil {
		f.t.Fatal(err)
	}
	f.manual = d
	f.srv.Emu.ResetStats()
}

// richUser is a user carrying every attribute scimbridge manages, with values that vary with i
// (and some left empty: no middle name on every third, no phone on every fifth, no address on
// every seventh), so that an exact comparison covers each attribute and its absence.
func richUser(i int, ext, name string) scim.User {
	u := scim.User{ExternalID: ext, UserName: name + "@example.com", DisplayName: fmt.Sprintf("User %d", i),
		GivenName: fmt.Sprintf("Given%d", i), FamilyName: fmt.Sprintf("Family%d", i%13),
		NickName: fmt.Sprintf("nick%d", i), ProfileURL: fmt.Sprintf("https://example.com/people/%d", i),
		Title: []string{"Engineer", "Manager", "Analyst", "Director"}[i%4], UserType: []string{"Employee", "Contractor"}[i%2],
		PreferredLanguage: []string{"en-US", "fr-FR", "de-DE"}[i%3], Locale: []string{"en-US", "fr-CA"}[i%2],
		Timezone: []string{"Europe/Paris", "America/New_York", "Asia/Tokyo"}[i%3],
		Email:    name + "@example.com", EmailType: []string{"work", "home"}[i%2], Active: true,
		Enterprise: scim.Enterprise{EmployeeNumber: fmt.Sprintf("E%05d", i), CostCenter: fmt.Sprintf("CC%d", i%4),
			Organization: "Example Corp", Division: []string{"R&D", "Operations"}[i%2],
			Department: []string{"Engineering", "Finance", "Sales"}[i%3]}}
	if i%3 != 0 {
		u.MiddleName = fmt.Sprintf("Middle%d", i)
		u.HonorificPrefix = []string{"Dr.", "Ms.", "Mr."}[i%3]
		u.HonorificSuffix = "PhD"
	}
	if i%5 != 0 {
		u.PhoneNumber, u.PhoneType = fmt.Sprintf("+1 555 %04d", i), []string{"work", "mobile"}[i%2]
	}
	if i%7 != 0 {
		u.Address = &scim.Address{Formatted: fmt.Sprintf("%d Main St, Springfield", i), StreetAddress: fmt.Sprintf("%d Main St", i),
			Locality: "Springfield", Region: "IL", PostalCode: fmt.Sprintf("62%03d", i%1000), Country: "US", Type: "work"}
	}
	return u
}

// faultCompany is n users carrying every managed attribute (every fifth one managed by the
// first) and g groups with overlapping members, one of them with more than 100 members when n
// allows.
func faultCompany(n, g int) scim.Snapshot {
	var s scim.Snapshot
	for i := range n {
		u := richUser(i, fmt.Sprintf("u%04d", i), fmt.Sprintf("user%04d", i))
		if i > 0 && i%5 == 0 {
			u.Enterprise.Manager = "u0000"
		}
		s.Users = append(s.Users, u)
	}
	for j := range g {
		grp := scim.Group{ExternalID: fmt.Sprintf("g%02d", j), DisplayName: fmt.Sprintf("Team %02d", j)}
		for i := range n {
			if j == 0 || i%(j+1) == 0 {
				grp.Members = append(grp.Members, s.Users[i].ExternalID)
			}
		}
		s.Groups = append(s.Groups, grp)
	}
	return s
}

func (f *faultEnv) reconciler(mod ...func(*reconcile.Config)) *reconcile.Reconciler {
	cfg := reconcile.Config{
		Desired: func(context.Context) (scim.Snapshot, error) { return f.desired, nil },
		Target:  f.client, Reader: f.client, State: f.st,
		Guards:      plan.Guards{MaxDeletes: -1, MaxDeletePercent: -1},
		Concurrency: 8,
	}
	for _, m := range mod {
		m(&cfg)
	}
	r, err := reconcile.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// converge runs until a run succeeds (at most max runs) and returns how many it took.
func (f *faultEnv) converge(r *reconcile.Reconciler, max int) int {
	f.t.Helper()
	for i := 1; i <= max; i++ {
		res, err := r.RunOnce(context.Background(), reconcile.RunOptions{})
		if err == nil {
			return i
		}
		var be *plan.BlockedError
		if errors.As(err, &be) {
			f.t.Fatalf("run %d blocked: %v", i, err)
		}
		f.t.Logf("run %d: %v (%d errors, counts %+v)", i, err, len(res.Errors), res.Counts)
	}
	f.t.Fatalf("no successful run in %d attempts", max)
	return 0
}

// verify checks that the target equals the desired state exactly, with the unmanaged objects
// untouched, and that a fresh full read finds nothing to do.
func (f *faultEnv) verify() {
	f.t.Helper()
	f.srv.Emu.SetFaults(emulator.Faults{})
	d, err := f.srv.Emu.Dump()
	if err != nil {
		f.t.Fatal(err)
	}
	if diff := cmp.Diff(exactView(f.t, f.desired, f.manual), dumpView(f.t, d)); diff != "" {
		f.t.Errorf("target differs from the desired state (-want +got):\n%s", diff)
	}
	// The unmanaged objects are byte-for-byte what they were (same id, same revision).
	for _, m := range f.manual.Users {
		i := slices.IndexFunc(d.Users, func(u emulator.DumpUser) bool { return u.ID == m.ID })
		if i < 0 {
			f.t.Errorf("unmanaged user %q is gone", m.UserName)
		} else if diff := cmp.Diff(m, d.Users[i]); diff != "" {
			f.t.Errorf("unmanaged user %q was touched (-want +got):\n%s", m.UserName, diff)
		}
	}
	for _, m := range f.manual.Groups {
		i := slices.IndexFunc(d.Groups, func(g emulator.DumpGroup) bool { return g.ID == m.ID })
		if i < 0 {
			f.t.Errorf("unmanaged group %q is gone", m.DisplayName)
		} else if diff := cmp.Diff(m, d.Groups[i]); diff != "" {
			f.t.Errorf("unmanaged group %q was touched (-want +got):\n%s", m.DisplayName, diff)
		}
	}
	// A plain client (no fault, no limiter cut down by the scenario) reads the whole target.
	plain, err := client.New(client.Config{BaseURL: f.srv.URL,
		Token: func(context.Context) (string, error) { return f.srv.Token, nil }})
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := f.reconciler(func(c *reconcile.Config) { c.Target, c.Reader = plain, plain }).
		RunOnce(context.Background(), reconcile.RunOptions{FullRead: true})
	if err != nil || !res.Plan.Empty() {
		f.t.Errorf("a full read after the scenario is not a no-op: err %v, plan %+v", err, res.Plan.Changes)
	}
	if err := f.st.IntegrityCheck(context.Background()); err != nil {
		f.t.Error(err)
	}
}

// fullView is the target as compared: every user by userName and every group by name, with the
// fields scimbridge writes and the userNames of the members. A duplicate fails the test.
type fullView struct {
	Users  map[string]string
	Groups map[string]string
}

func exactView(t *testing.T, s scim.Snapshot, manual emulator.Dump) fullView {
	v := fullView{Users: map[string]string{}, Groups: map[string]string{}}
	byExt := map[string]string{}
	for _, u := range s.Users {
		byExt[u.ExternalID] = u.UserName
	}
	for _, u := range s.Users {
		d := emulator.DumpUser{ExternalID: u.ExternalID, UserName: u.UserName, DisplayName: u.DisplayName,
			GivenName: u.GivenName, FamilyName: u.FamilyName, MiddleName: u.MiddleName,
			HonorificPrefix: u.HonorificPrefix, HonorificSuffix: u.HonorificSuffix, NickName: u.NickName,
			ProfileURL: u.ProfileURL, Title: u.Title, UserType: u.UserType, PreferredLanguage: u.PreferredLanguage,
			Locale: u.Locale, Timezone: u.Timezone, Email: u.Email, EmailType: u.EmailType,
			PhoneNumber: u.PhoneNumber, PhoneType: u.PhoneType, Active: u.Active, CreatedBy: "scim",
			Enterprise: emulator.DumpEnterprise{EmployeeNumber: u.Enterprise.EmployeeNumber, CostCenter: u.Enterprise.CostCenter,
				Organization: u.Enterprise.Organization, Division: u.Enterprise.Division, Department: u.Enterprise.Department}}
		if a := u.Address; a != nil {
			d.Address = &emulator.DumpAddress{Formatted: a.Formatted, StreetAddress: a.StreetAddress, Locality: a.Locality,
				Region: a.Region, PostalCode: a.PostalCode, Country: a.Country, Type: a.Type}
		}
		v.Users[strings.ToLower(u.UserName)] = userLine(d, byExt[u.Enterprise.Manager])
	}
	for _, g := range s.Groups {
		var names []string
		for _, m := range g.Members {
			names = append(names, byExt[m])
		}
		slices.Sort(names)
		v.Groups[g.DisplayName] = fmt.Sprintf("ext=%s by=scim members=%v", g.ExternalID, names)
	}
	mv := dumpView(t, manual)
	for k, val := range mv.Users {
		v.Users[k] = val
	}
	for k, val := range mv.Groups {
		v.Groups[k] = val
	}
	return v
}

func dumpView(t *testing.T, d emulator.Dump) fullView {
	t.Helper()
	v := fullView{Users: map[string]string{}, Groups: map[string]string{}}
	names := map[string]string{}
	for _, u := range d.Users {
		names[u.ID] = u.UserName
	}
	for _, u := range d.Users {
		k := strings.ToLower(u.UserName)
		if _, dup := v.Users[k]; dup {
			t.Errorf("duplicate user %q", u.UserName)
		}
		v.Users[k] = userLine(u, names[u.Enterprise.Manager])
	}
	for _, g := range d.Groups {
		if _, dup := v.Groups[g.DisplayName]; dup {
			t.Errorf("duplicate group %q", g.DisplayName)
		}
		var members []string
		for _, m := range g.Members {
			members = append(members, names[m])
		}
		slices.Sort(members)
		v.Groups[g.DisplayName] = fmt.Sprintf("ext=%s by=%s members=%v", g.ExternalID, g.CreatedBy, members)
	}
	return v
}

// userLine renders every attribute of a stored user that scimbridge manages (and role, which it
// never writes), with the manager named by userName; id and revision are left out.
func userLine(u emulator.DumpUser, manager string) string {
	addr := "none"
	if a := u.Address; a != nil {
		addr = fmt.Sprintf("%q/%q/%q/%q/%q/%q/%q", a.Formatted, a.StreetAddress, a.Locality, a.Region, a.PostalCode, a.Country, a.Type)
	}
	e := u.Enterprise
	return fmt.Sprintf("ext=%s userName=%q name=%q given=%q middle=%q family=%q prefix=%q suffix=%q nick=%q profile=%q "+
		"title=%q type=%q lang=%q locale=%q tz=%q email=%q emailType=%q phone=%q phoneType=%q role=%q address=%s "+
		"active=%v employee=%q cost=%q org=%q division=%q dept=%q manager=%q by=%s",
		u.ExternalID, u.UserName, u.DisplayName, u.GivenName, u.MiddleName, u.FamilyName, u.HonorificPrefix, u.HonorificSuffix,
		u.NickName, u.ProfileURL, u.Title, u.UserType, u.PreferredLanguage, u.Locale, u.Timezone, u.Email, u.EmailType,
		u.PhoneNumber, u.PhoneType, u.Role, addr, u.Active, e.EmployeeNumber, e.CostCenter, e.Organization, e.Division,
		e.Department, manager, u.CreatedBy)
}

// change edits the desired state so that a second run exercises updates, renames, member moves
// and deletes under the same faults.
func change(s scim.Snapshot) scim.Snapshot {
	s.Users = slices.Clone(s.Users)
	s.Groups = slices.Clone(s.Groups)
	s.Users[1].UserName, s.Users[1].Email = "renamed1@example.com", "renamed1@example.com"
	s.Users[2].Active = false
	s.Users = slices.Delete(s.Users, 3, 5) // u0003 and u0004 leave
	gone := map[string]bool{"u0003": true, "u0004": true}
	for i := range s.Groups {
		s.Groups[i].Members = slices.DeleteFunc(slices.Clone(s.Groups[i].Members), func(m string) bool { return gone[m] })
	}
	// Every kind of managed attribute changes on some user, and some are cleared.
	s.Users[5].Title, s.Users[5].MiddleName, s.Users[5].HonorificPrefix = "Principal Engineer", "Changed", "Prof."
	s.Users[6].PhoneNumber, s.Users[6].PhoneType, s.Users[6].EmailType = "+44 20 7946 0000", "mobile", "other"
	s.Users[7].Address = &scim.Address{StreetAddress: "1 Rue de Rivoli", Locality: "Paris", PostalCode: "75001", Country: "FR", Type: "home"}
	s.Users[8].Enterprise.CostCenter, s.Users[8].Enterprise.Division, s.Users[8].Enterprise.EmployeeNumber = "CC9", "Legal", "X1"
	s.Users[9].Locale, s.Users[9].Timezone, s.Users[9].PreferredLanguage, s.Users[9].NickName = "de-DE", "Europe/Berlin", "de", "neo"
	s.Users[10].Address, s.Users[10].PhoneNumber, s.Users[10].PhoneType = nil, "", ""
	s.Users[11].ProfileURL, s.Users[11].UserType, s.Users[11].HonorificSuffix = "", "Intern", ""
	s.Groups[1].DisplayName = "Team 01 renamed"
	s.Groups[2].Members = append(s.Groups[2].Members, "u0001")
	s.Groups = s.Groups[:len(s.Groups)-1] // the last group is removed
	return s
}

// scenario runs the initial sync and then a change under the faults set by arm, and verifies
// the exact state after each.
func (f *faultEnv) scenario(arm func(), r *reconcile.Reconciler, maxRuns int) {
	f.t.Helper()
	arm()
	start := time.Now()
	runs := f.converge(r, maxRuns)
	f.t.Logf("initial sync converged in %d run(s) in %s; emulator stats %v", runs, time.Since(start), f.srv.Emu.Stats())
	start = time.Now()
	f.verify()
	f.t.Logf("verify %s", time.Since(start))
	f.desired = change(f.desired)
	arm()
	runs = f.converge(r, maxRuns)
	f.t.Logf("change converged in %d run(s)", runs)
	f.verify()
}

func TestFaultThrottleStorm(t *testing.T) {
	// The client starts far above the target's limit: a storm of 429s with Retry-After.
	f := newFaultEnv(t, faultOptions{limiter: client.NewLimiter(client.LimiterConfig{Initial: 1000, Max: 2000})})
	f.scenario(func() { f.srv.Emu.SetFaults(emulator.Faults{RateLimit: 100, Burst: 20}) }, f.reconciler(), 3)
	if st := f.srv.Emu.Stats(); st["throttled"] == 0 {
		t.Errorf("no request was throttled; the scenario did not storm: %v", st)
	}
}

func TestFaultServerErrors(t *testing.T) {
	f := newFaultEnv(t, faultOptions{})
	f.scenario(func() { f.srv.Emu.SetFaults(emulator.Faults{ErrorRatio: 0.1}) }, f.reconciler(), 3)
	if st := f.srv.Emu.Stats(); st["injected"] == 0 {
		t.Errorf("no 5xx was injected: %v", st)
	}
}

func TestFaultDroppedConnections(t *testing.T) {
	f := newFaultEnv(t, faultOptions{})
	f.scenario(func() { f.srv.Emu.SetFaults(emulator.Faults{DropRatio: 0.1}) }, f.reconciler(), 3)
	if st := f.srv.Emu.Stats(); st["dropped"] == 0 {
		t.Errorf("no connection was dropped: %v", st)
	}
}

func TestFaultMixed(t *testing.T) {
	// All at once, with a strict budget of retries: runs fail part-way and later runs finish.
	f := newFaultEnv(t, faultOptions{limiter: client.NewLimiter(client.LimiterConfig{Initial: 200})})
	f.scenario(func() {
		f.srv.Emu.SetFaults(emulator.Faults{RateLimit: 80, Burst: 20, ErrorRatio: 0.15, DropRatio: 0.15})
	}, f.reconciler(), 6)
	// Each fault kind must have fired, or the scenario proved less than its name says.
	st := f.srv.Emu.Stats()
	for _, kind := range []string{"throttled", "injected", "dropped"} {
		if st[kind] == 0 {
			t.Errorf("no request was %s: %v", kind, st)
		}
	}
}

func TestFaultSlowAnswersPastTimeout(t *testing.T) {
	// While the plan is applied the target answers slower than the client's 80 ms timeout until
	// three requests have timed out (counted, not timed, so that a loaded machine that starts the
	// requests late still meets the slow target); timed-out requests are retried and the run
	// still ends exact.
	f := newFaultEnv(t, faultOptions{timeout: 80 * time.Millisecond})
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	r := f.reconciler(func(c *reconcile.Config) {
		c.OnPlan = func(p *plan.Plan) {
			if p.Empty() {
				return
			}
			from := f.noAnswer.Load()
			f.srv.Emu.SetFaults(emulator.Faults{Latency: 300 * time.Millisecond})
			wg.Go(func() {
				deadline := time.Now().Add(10 * time.Second)
				for f.noAnswer.Load() < from+3 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				f.srv.Emu.SetFaults(emulator.Faults{})
			})
		}
	})
	f.scenario(func() { f.srv.Emu.SetFaults(emulator.Faults{}) }, r, 4)
	if f.noAnswer.Load() == 0 {
		t.Error("no request timed out; the scenario did not exercise the timeout")
	}
}

func TestFaultAllWritesTimeOutThenRecover(t *testing.T) {
	// A whole run's writes time out (some may have been carried out by the target); the run is
	// partial, and the next one resolves what is unconfirmed without a duplicate.
	f := newFaultEnv(t, faultOptions{timeout: 60 * time.Millisecond})
	f.desired = faultCompany(16, 2)
	slow := true
	r := f.reconciler(func(c *reconcile.Config) {
		c.OnPlan = func(*plan.Plan) {
			if slow {
				f.srv.Emu.SetFaults(emulator.Faults{Latency: 200 * time.Millisecond})
			}
		}
	})
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{})
	if err == nil || res.Result == reconcile.ResultSuccess {
		t.Fatalf("a run whose every write timed out succeeded: %+v", res.Counts)
	}
	runs, err := f.st.Runs(context.Background(), 1)
	if err != nil || runs[0].Result == state.ResultSuccess {
		t.Fatalf("run history = %+v, %v; want the run recorded as not successful", runs, err)
	}
	slow = false
	f.srv.Emu.SetFaults(emulator.Faults{})
	f.converge(r, 3)
	f.verify()
}

// losingTransport forwards every request but, for the first n creates (POST), throws the answer
// away after the target acted and reports a reset connection: the client's retry then meets a 409.
type losingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
	lost atomic.Int64
}

func (l *losingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || resp.StatusCode != http.StatusCreated {
		return resp, err
	}
	if l.n.Add(-1) < 0 {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	l.lost.Add(1)
	return nil, fmt.Errorf("read tcp 127.0.0.1: %w", syscall.ECONNRESET)
}

func TestFaultLostCreateAnswersResolveConflicts(t *testing.T) {
	lt := &losingTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
	lt.n.Store(25)
	f := newFaultEnv(t, faultOptions{transport: lt})
	r := f.reconciler()
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{})
	if err != nil {
		t.Fatalf("a lost answer must be resolved in the same run: %v %v", err, res.Errors)
	}
	if lt.lost.Load() != 25 {
		t.Fatalf("lost %d answers, want 25", lt.lost.Load())
	}
	if want := len(f.desired.Users) + len(f.desired.Groups); res.Counts.Created != want {
		t.Errorf("created %d, want %d (each lost create resolved by lookup, none counted twice)", res.Counts.Created, want)
	}
	st := f.srv.Emu.Stats()
	if st["scim.CreateUser"]+st["scim.CreateGroup"] != int64(res.Counts.Created)+25 {
		t.Errorf("creates reaching the target = %d, want %d (one retry per lost answer): %v",
			st["scim.CreateUser"]+st["scim.CreateGroup"], res.Counts.Created+25, st)
	}
	f.verify()
}

// lossyGroupTarget loses the answer of group creates and membership PATCHes after the target acted,
// at the reconciler's level (no client retry): the next run must find them through the pending
// intents and the state, and converge without duplicates or missing members.
type lossyGroupTarget struct {
	reconcile.Target
	mu   sync.Mutex
	lose int
}

func (l *lossyGroupTarget) take() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lose--
	return l.lose >= 0
}

func (l *lossyGroupTarget) CreateGroup(ctx context.Context, g scim.Group, ids []string) (string, error) {
	id, err := l.Target.CreateGroup(ctx, g, ids)
	if err == nil && l.take() {
		return "", errors.New("read tcp: connection reset by peer")
	}
	return id, err
}

func (l *lossyGroupTarget) PatchGroup(ctx context.Context, id string, p client.GroupPatch) error {
	err := l.Target.PatchGroup(ctx, id, p)
	if err == nil && l.take() {
		return errors.New("read tcp: connection reset by peer")
	}
	return err
}

func TestFaultLostGroupAnswersConverge(t *testing.T) {
	f := newFaultEnv(t, faultOptions{})
	f.desired = faultCompany(150, 4) // Team 00 has 150 members: a POST of 100 and a PATCH of 50
	lt := &lossyGroupTarget{Target: f.client, lose: 3}
	r := f.reconciler(func(c *reconcile.Config) { c.Target = lt; c.Concurrency = 1 })
	if _, err := r.RunOnce(context.Background(), reconcile.RunOptions{}); !errors.Is(err, reconcile.ErrPartial) {
		t.Fatalf("first run: %v, want partial", err)
	}
	f.converge(r, 3)
	f.verify()
}
