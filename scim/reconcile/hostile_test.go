package reconcile_test

// Hostile directory records and failing sources (issue 9), from a connectors.Source through the
// mapping and the reconciler to the emulator: bad records are reported and skipped, the rest
// syncs, no value changes a filter or a request, and a source that fails or comes back empty
// deletes nothing.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/file"
	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// recordingTransport records every request the client sends: method, path, filter and body.
type recordingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, filter string
	body                 []byte
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.Method, req.URL.Path, req.URL.Query().Get("filter"), body})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recordingTransport) filters() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, q := range r.reqs {
		if q.filter != "" {
			out = append(out, q.filter)
		}
	}
	return out
}

// fakeSource is a directory read page by page that can fail on a page, hang, or come back empty.
type fakeSource struct {
	mu       sync.Mutex
	dir      connectors.Directory
	pageSize int
	failPage int  // 1-based page whose read fails; 0: none
	hang     bool // block until the context is done
	empty    bool // answer an empty directory, as a wrong base DN or a revoked grant does
	pages    int  // pages read by the last Read
}

var _ connectors.Source = (*fakeSource)(nil)

func (s *fakeSource) Read(ctx context.Context) (*connectors.Directory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pages = 0
	if s.hang {
		<-ctx.Done()
		return nil, fmt.Errorf("fake: search users: %w", ctx.Err())
	}
	if s.empty {
		return &connectors.Directory{}, nil
	}
	out := &connectors.Directory{Groups: s.dir.Groups}
	for i := 0; i < len(s.dir.Users); i += s.pageSize {
		s.pages++
		if s.pages == s.failPage {
			return nil, fmt.Errorf("fake: search users: page %d: connection reset by peer", s.pages)
		}
		out.Users = append(out.Users, s.dir.Users[i:min(i+s.pageSize, len(s.dir.Users))]...)
	}
	return out, nil
}

func (s *fakeSource) Close() error { return nil }

func (s *fakeSource) set(f func(s *fakeSource)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func entryUser(id, userName, given, family, email string) connectors.Entry {
	return connectors.Entry{ID: id, Keys: []string{userName}, Attributes: map[string][]string{
		"userName": {userName}, "givenName": {given}, "familyName": {family}, "email": {email}}}
}

// mappedDesired reads src through the file flavour's default mapping.
func mappedDesired(t *testing.T, src connectors.Source) reconcile.DesiredFunc {
	m, err := connectors.Compile(file.Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context) (scim.Snapshot, error) {
		d, err := src.Read(ctx)
		if err != nil {
			return scim.Snapshot{}, err
		}
		return m.Apply(d), nil
	}
}

// userRevisions lists each user of a dump as id@revision, in the dump's order.
func userRevisions(d emulator.Dump) []string {
	var out []string
	for _, u := range d.Users {
		out = append(out, fmt.Sprintf("%s@%d", u.ID, u.Revision))
	}
	return out
}

func TestSourceFaultsDeleteNothing(t *testing.T) {
	f := newFaultEnv(t, faultOptions{})
	src := &fakeSource{pageSize: 500}
	for i := range 3000 {
		src.dir.Users = append(src.dir.Users, entryUser(fmt.Sprintf("u%04d", i), fmt.Sprintf("user%04d@example.com", i), "User", "Example", fmt.Sprintf("user%04d@example.com", i)))
	}
	var all []string
	for _, u := range src.dir.Users[:150] {
		all = append(all, u.ID)
	}
	src.dir.Groups = []connectors.Entry{{ID: "g-all", Attributes: map[string][]string{"name": {"Some"}}, Members: all}}
	r := f.reconciler(func(c *reconcile.Config) {
		c.Desired = mappedDesired(t, src)
		c.Guards = plan.DefaultGuards
		c.Concurrency = 32
	})
	if _, err := r.RunOnce(context.Background(), reconcile.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := f.srv.Emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Users) != 3001 {
		t.Fatalf("initial sync: %s", before.Counts())
	}
	cases := []struct {
		name    string
		arm     func(s *fakeSource)
		ctx     func() (context.Context, context.CancelFunc)
		wantErr func(error) bool
	}{
		{"error on page 3", func(s *fakeSource) { s.failPage = 3 }, nil,
			func(err error) bool {
				return errors.Is(err, reconcile.ErrSourceRead) && strings.Contains(err.Error(), "page 3")
			}},
		{"error on the last page", func(s *fakeSource) { s.failPage = 6 }, nil,
			func(err error) bool { return errors.Is(err, reconcile.ErrSourceRead) }},
		{"time-out", func(s *fakeSource) { s.hang = true },
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
			func(err error) bool {
				return errors.Is(err, reconcile.ErrSourceRead) && errors.Is(err, context.DeadlineExceeded)
			}},
		{"empty where it had thousands", func(s *fakeSource) { s.empty = true }, nil,
			func(err error) bool { var be *plan.BlockedError; return errors.As(err, &be) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src.set(func(s *fakeSource) { s.failPage, s.hang, s.empty = 0, false, false; tc.arm(s) })
			f.srv.Emu.ResetStats()
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			res, err := r.RunOnce(ctx, reconcile.RunOptions{FullRead: true})
			if !tc.wantErr(err) {
				t.Fatalf("err = %v", err)
			}
			if res.Counts.Deleted != 0 || res.Counts.Disabled != 0 {
				t.Errorf("counts %+v: a failed source deprovisioned", res.Counts)
			}
			if w := writes(f.srv.Emu.Stats()); w != 0 {
				t.Errorf("%d writes reached the target", w)
			}
			after, err := f.srv.Emu.Dump()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(userRevisions(before), userRevisions(after)); diff != "" {
				t.Errorf("target users changed (-before +after):\n%s", diff)
			}
			if len(after.Groups) != len(before.Groups) || len(after.Memberships) != len(before.Memberships) {
				t.Errorf("target changed: got %s, want %s", after.Counts(), before.Counts())
			}
			runs, err := f.st.Runs(context.Background(), 1)
			if err != nil || len(runs) == 0 {
				t.Fatal(runs, err)
			}
			want := state.ResultFailed
			if strings.HasPrefix(tc.name, "empty") {
				want = state.ResultBlocked
			}
			if runs[0].Result != want || len(runs[0].Errors) == 0 {
				t.Errorf("run recorded as %q with errors %q, want %q with the error", runs[0].Result, runs[0].Errors, want)
			}
		})
	}
	// The source recovers: a normal run changes nothing.
	src.set(func(s *fakeSource) { s.failPage, s.hang, s.empty = 0, false, false })
	if res, err := r.RunOnce(context.Background(), reconcile.RunOptions{FullRead: true}); err != nil || !res.Plan.Empty() {
		t.Fatalf("after recovery: %v %+v", err, res.Plan.Changes)
	}
}

func TestHostileRecords(t *testing.T) {
	rec := &recordingTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
	// Every create answer is lost once: the 409 on the retry is resolved by a filter built from the
	// record's externalId, which is where a value could change a filter.
	lt := &losingTransport{next: rec}
	lt.n.Store(1000)
	f := newFaultEnv(t, faultOptions{transport: lt})

	long := strings.Repeat("x", 5000)
	inject := []string{`x" or userName pr "`, `a\") or (userName pr`, `*)(userName=*`, `x\`, `" or "1" eq "1`, `x"or"userName"pr"`, `a\\"\`}
	src := &fakeSource{pageSize: 1000}
	good := func(id, name string) connectors.Entry {
		return entryUser(id, name+"@example.com", "Good", "Person", name+"@example.com")
	}
	src.dir.Users = []connectors.Entry{
		good("ok-1", "alice"), good("ok-2", "bob"),
		entryUser("no-given", "nogiven@example.com", "", "Person", "nogiven@example.com"),
		entryUser("no-family", "nofamily@example.com", "No", "", "nofamily@example.com"),
		entryUser("no-username", "", "No", "Name", "noname@example.com"),
		entryUser("dup-name-a", "same@example.com", "Dup", "A", "dupa@example.com"),
		entryUser("dup-name-b", "SAME@example.com", "Dup", "B", "dupb@example.com"),
		entryUser("dup-mail-a", "mail-a@example.com", "Mail", "A", "shared@example.com"),
		entryUser("dup-mail-b", "mail-b@example.com", "Mail", "B", "shared@example.com"),
		entryUser("long", "long@example.com", long, "Person", "long@example.com"),
		entryUser("bad-utf8", "bad\xff\xfe@example.com", "Bad", "Utf", "badutf8@example.com"),
		entryUser("bad-utf8-name", "badname@example.com", "Bad\xc3\x28", "Utf", "badname@example.com"),
		entryUser("control", "control\x00@example.com", "Con\x07trol", "Chars", "control@example.com"),
		entryUser("control-2", "control2@example.com", "Tab", "New\nLine", "control2@example.com"),
	}
	for i, v := range inject {
		e := entryUser(fmt.Sprintf(`inj-%d-%s`, i, v), fmt.Sprintf("inj%d-%s", i, v), v, v, fmt.Sprintf("inj%d@example.com", i))
		e.Attributes["displayName"] = []string{v}
		src.dir.Users = append(src.dir.Users, e)
	}
	var big []string
	for i := range 20000 {
		big = append(big, fmt.Sprintf("ghost-%05d", i)) // the big group's members, mostly unknown
	}
	big = append(big, "ok-1", "ok-2")
	src.dir.Groups = []connectors.Entry{
		{ID: "g-big", Attributes: map[string][]string{"name": {"Twenty Thousand"}}, Members: big},
		{ID: "cycle-a", Attributes: map[string][]string{"name": {"Cycle A"}}, Members: []string{"cycle-b", "ok-1"}},
		{ID: "cycle-b", Attributes: map[string][]string{"name": {"Cycle B"}}, Members: []string{"cycle-a", "ok-2"}},
		{ID: `g-inj-"*)`, Attributes: map[string][]string{"name": {`Team "x" or displayName pr "`}}, Members: []string{"ok-1"}},
		{ID: "g-noname", Attributes: map[string][]string{"name": {"\x00"}}, Members: []string{"ok-1"}},
	}
	desired := mappedDesired(t, src)
	snap, _ := desired(context.Background())
	f.desired = scim.Normalize(snap)

	r := f.reconciler(func(c *reconcile.Config) { c.Desired = desired })
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{})
	if err != nil {
		t.Fatalf("hostile records stopped the run: %v %v", err, res.Errors)
	}
	// Each bad record is reported with its id.
	skipped := map[string]bool{}
	for _, p := range res.Plan.Problems {
		if p.Dropped {
			skipped[p.ID] = true
		}
	}
	for _, id := range []string{"no-given", "no-family", "no-username", "dup-name-b", "dup-mail-b", "long", "bad-utf8",
		"bad-utf8-name", "control", "g-noname"} {
		if !skipped[id] {
			t.Errorf("bad record %s was not reported as skipped (problems %+v)", id, res.Plan.Problems)
		}
	}
	for _, id := range []string{"ok-1", "ok-2", "dup-name-a", "dup-mail-a"} {
		if skipped[id] {
			t.Errorf("good record %s was skipped", id)
		}
	}
	if len(f.desired.Users) < 4 || lt.lost.Load() == 0 {
		t.Fatalf("the scenario lost nothing or kept too little: %d users, %d lost", len(f.desired.Users), lt.lost.Load())
	}
	f.verify()

	// Every filter the client sent is `externalId eq <the JSON-quoted id of a record it created>`:
	// nothing a value held became part of the filter's syntax.
	ids := map[string]bool{}
	for _, u := range f.desired.Users {
		ids[u.ExternalID] = true
	}
	for _, g := range f.desired.Groups {
		ids[g.ExternalID] = true
	}
	for _, flt := range rec.filters() {
		attr, lit, ok := strings.Cut(flt, " eq ")
		if !ok || (attr != "externalId" && attr != "members.value") {
			t.Errorf("unexpected filter %q", flt)
			continue
		}
		if attr == "externalId" {
			v, ok := parseSCIMString(lit)
			if !ok || !ids[v] {
				t.Errorf("filter %q does not name exactly one record's id (%q)", flt, v)
			}
		}
	}

	// A lookup by a hostile value finds exactly the user that holds it, or nobody.
	ctx := context.Background()
	for _, v := range inject {
		u, err := f.client.FindUser(ctx, "userName", v)
		if err != nil || u != nil {
			t.Errorf("FindUser(userName, %q) = %+v, %v; want nobody", v, u, err)
		}
	}
	found := 0
	for _, want := range f.desired.Users {
		if !strings.HasPrefix(want.ExternalID, "inj-") {
			continue
		}
		found++
		u, err := f.client.FindUser(ctx, "userName", want.UserName)
		if err != nil || u == nil || u.ExternalID != want.ExternalID {
			t.Errorf("FindUser(userName, %q) = %+v, %v; want that user", want.UserName, u, err)
		}
	}
	if found < 3 {
		t.Errorf("only %d users with metacharacters were synced", found)
	}
	// The bodies sent carried the values as JSON strings only.
	for _, q := range rec.reqs {
		if q.method == http.MethodPost && bytes.Contains(q.body, []byte("\x00")) {
			t.Errorf("a request body carried a NUL byte: %s", q.body)
		}
	}
}

// parseSCIMString reads a SCIM (JSON) string literal that must span the whole of s.
func parseSCIMString(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		switch {
		case c == '"':
			return "", false // an unescaped quote would end the literal early
		case c == '\\':
			i++
			if i >= len(s)-1 {
				return "", false
			}
			switch s[i] {
			case '"', '\\', '/':
				b.WriteByte(s[i])
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+4 >= len(s)-1 {
					return "", false
				}
				var r rune
				if _, err := fmt.Sscanf(s[i+1:i+5], "%04x", &r); err != nil {
					return "", false
				}
				b.WriteRune(r)
				i += 4
			default:
				return "", false
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
