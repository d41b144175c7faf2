package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
)

type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) ObserveRequest(api, op string, status int, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("%s.%s %d", api, op, status))
}

func newClient(t *testing.T, url, token string, mod func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{
		BaseURL: url + "/scim/v2",
		Token:   func(context.Context) (string, error) { return token, nil },
		Retry:   client.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func fullUser() scim.User {
	return scim.User{
		ExternalID: "ext-1", UserName: "ada@example.com", DisplayName: "Ada Lovelace", GivenName: "Ada",
		FamilyName: "Lovelace", MiddleName: "King", HonorificPrefix: "Lady", HonorificSuffix: "Countess",
		NickName: "ada", ProfileURL: "https://example.com/ada", Title: "Analyst", UserType: "Employee",
		PreferredLanguage: "en-GB", Locale: "en_GB", Timezone: "Europe/London",
		Email: "ada@example.com", EmailType: "home", PhoneNumber: "+44 20 0000", PhoneType: "work",
		Address: &scim.Address{StreetAddress: "1 St James's Square", Locality: "London", PostalCode: "SW1",
			Country: "GB", Type: "work"},
		Active: true,
		Enterprise: scim.Enterprise{EmployeeNumber: "42", CostCenter: "CC1", Organization: "Analytical",
			Division: "Engines", Department: "Notes", Manager: "source-id-of-manager"},
	}
}

// TestUserRoundTrip writes a user with every attribute and reads it back: what ReadState
// returns must equal what was written (a field never read back would make every run rewrite
// every user), and the wire form must follow Identity Center's rules.
func TestUserRoundTrip(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, srv.URL, f.token, nil)
	ctx := context.Background()
	u := fullUser()
	id, err := c.CreateUser(ctx, u, "u-manager")
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}

	var wire map[string]any
	if err := json.Unmarshal([]byte(f.bodies[0]), &wire); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(wire["schemas"]), "[urn:ietf:params:scim:schemas:core:2.0:User urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]"; got != want {
		t.Errorf("schemas = %s, want %s", got, want)
	}
	emails := wire["emails"].([]any)
	if len(emails) != 1 || emails[0].(map[string]any)["primary"] != true || emails[0].(map[string]any)["type"] != "home" {
		t.Errorf("emails = %v, want one primary of type home", emails)
	}
	ent := wire[client.SchemaEnterprise].(map[string]any)
	if got := fmt.Sprint(ent["manager"]); got != "map[value:u-manager]" {
		t.Errorf("manager = %s, want map[value:u-manager]", got)
	}
	if strings.Contains(f.bodies[0], `"display"`) || strings.Contains(f.bodies[0], "source-id-of-manager") {
		t.Errorf("body carries a display sub-attribute or the source manager id: %s", f.bodies[0])
	}
	if got := f.requests[0].Header.Get("Content-Type"); got != "application/scim+json" {
		t.Errorf("Content-Type = %q", got)
	}

	st, err := c.ReadState(ctx)
	if err != nil {
		t.Fatalf("ReadState: %v", err)
	}
	want := u
	want.Enterprise.Manager = "u-manager"
	if len(st.Users) != 1 {
		t.Fatalf("ReadState users = %d, want 1", len(st.Users))
	}
	if st.Users[0].ID != id {
		t.Errorf("id = %q, want %q", st.Users[0].ID, id)
	}
	if d := cmp.Diff(want, st.Users[0].User); d != "" {
		t.Errorf("user read back differs (-want +got):\n%s", d)
	}

	// A replace with fewer fields clears the others, and reads back equal too.
	small := scim.User{ExternalID: "ext-1", UserName: "ada@example.com", DisplayName: "Ada", GivenName: "Ada", FamilyName: "L"}
	if err := c.ReplaceUser(ctx, id, small, ""); err != nil {
		t.Fatalf("ReplaceUser: %v", err)
	}
	got, err := c.FindUser(ctx, "externalId", "ext-1")
	if err != nil || got == nil {
		t.Fatalf("FindUser = %v, %v", got, err)
	}
	small.EmailType = ""
	if d := cmp.Diff(small, got.User); d != "" {
		t.Errorf("replaced user differs (-want +got):\n%s", d)
	}
	if strings.Contains(f.bodies[len(f.bodies)-2], "enterprise") {
		t.Errorf("PUT without enterprise fields names the extension: %s", f.bodies[len(f.bodies)-2])
	}
}

func TestDefaultEmailType(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, srv.URL, f.token, nil)
	u := scim.User{UserName: "b", DisplayName: "B", GivenName: "B", FamilyName: "B", Email: "b@example.com", Active: true}
	if _, err := c.CreateUser(context.Background(), u, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.bodies[0], `"emails":[{"value":"b@example.com","type":"work","primary":true}]`) {
		t.Errorf("body = %s, want one primary work email", f.bodies[0])
	}
	if strings.Contains(f.bodies[0], client.SchemaEnterprise) {
		t.Errorf("body names the enterprise schema without enterprise fields: %s", f.bodies[0])
	}
}

// TestFilterEscaping: values are SCIM string literals; a hostile value cannot widen a filter.
func TestFilterEscaping(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, srv.URL, f.token, nil)
	ctx := context.Background()
	for _, name := range []string{`a" or userName pr or userName eq "b`, `back\slash`, `x\" or "1"="1`, "new\nline<&>"} {
		u := scim.User{UserName: name, DisplayName: "D", GivenName: "G", FamilyName: "F", Active: true}
		id, err := c.CreateUser(ctx, u, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.FindUser(ctx, "userName", name)
		if err != nil {
			t.Fatalf("FindUser(%q): %v", name, err)
		}
		if got == nil || got.ID != id {
			t.Errorf("FindUser(%q) = %+v, want id %s", name, got, id)
		}
		last := f.requests[len(f.requests)-1].URL.Query().Get("filter")
		if !strings.HasPrefix(last, `userName eq "`) || strings.Contains(last, "\n") {
			t.Errorf("filter = %s", last)
		}
	}
	if got, err := c.FindUser(ctx, "userName", "nobody"); got != nil || err != nil {
		t.Errorf("FindUser(nobody) = %v, %v; want nil, nil", got, err)
	}
	if _, err := c.FindUser(ctx, "emails.value", "x"); err == nil {
		t.Error("FindUser by emails.value: want an error")
	}
}

func TestErrorsAndRetries(t *testing.T) {
	ctx := context.Background()
	t.Run("conflict is not retried and matches ErrConflict", func(t *testing.T) {
		f, srv := newFake(t)
		rec := &recorder{}
		c := newClient(t, srv.URL, f.token, func(cfg *client.Config) { cfg.Observer = rec })
		g := scim.Group{ExternalID: "g1", DisplayName: "Admins"}
		if _, err := c.CreateGroup(ctx, g, nil); err != nil {
			t.Fatal(err)
		}
		_, err := c.CreateGroup(ctx, g, nil)
		if !errors.Is(err, client.ErrConflict) || errors.Is(err, client.ErrNotFound) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != 409 || ae.RequestID != "req-123" || ae.Detail != "Refused to create a new, duplicate resource." {
			t.Errorf("APIError = %+v", ae)
		}
		if client.IsRetryable(err) {
			t.Error("409 classified retryable")
		}
		if got := f.count("POST", "/scim/v2/Groups"); got != 2 {
			t.Errorf("POSTs = %d, want 2 (no retry of a 409)", got)
		}
		if d := cmp.Diff([]string{"scim.CreateGroup 201", "scim.CreateGroup 409"}, rec.calls); d != "" {
			t.Errorf("observed (-want +got):\n%s", d)
		}
	})
	t.Run("5xx and dropped connections are retried", func(t *testing.T) {
		f, srv := newFake(t)
		f.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
			switch n {
			case 1:
				awsError(w, 500, "internal")
				return true
			case 2:
				hj, _ := w.(http.Hijacker)
				conn, _, _ := hj.Hijack()
				conn.Close()
				return true
			}
			return false
		}
		c := newClient(t, srv.URL, f.token, nil)
		if _, err := c.CreateUser(ctx, scim.User{UserName: "u", DisplayName: "U", GivenName: "U", FamilyName: "U"}, ""); err != nil {
			t.Fatalf("CreateUser after transient failures: %v", err)
		}
		if got := f.count("POST", "/scim/v2/Users"); got != 3 {
			t.Errorf("POSTs = %d, want 3", got)
		}
	})
	t.Run("attempts run out", func(t *testing.T) {
		f, srv := newFake(t)
		f.before = func(w http.ResponseWriter, r *http.Request, n int) bool { awsError(w, 503, "down"); return true }
		c := newClient(t, srv.URL, f.token, nil)
		err := c.DeleteUser(ctx, "u-1")
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != 503 || !client.IsRetryable(err) {
			t.Fatalf("err = %v, want a retryable 503", err)
		}
		if got := f.count("DELETE", "/scim/v2/Users/u-1"); got != 4 {
			t.Errorf("DELETEs = %d, want 4 (MaxAttempts)", got)
		}
	})
	t.Run("throttle feeds the limiter and honours Retry-After", func(t *testing.T) {
		f, srv := newFake(t)
		f.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				awsError(w, 429, "Rate exceeded")
				return true
			}
			return false
		}
		lim := client.NewLimiter(client.LimiterConfig{Initial: 50})
		c := newClient(t, srv.URL, f.token, func(cfg *client.Config) { cfg.Limiter = lim })
		start := time.Now()
		if err := c.DeleteUser(ctx, "nope"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound after the retry", err)
		}
		if el := time.Since(start); el < time.Second {
			t.Errorf("retried after %v, want >= the 1s Retry-After", el)
		}
		if r := lim.Rate(); r >= 50 {
			t.Errorf("limiter rate %v after a 429, want < 50", r)
		}
	})
	t.Run("cancelled context stops retries", func(t *testing.T) {
		f, srv := newFake(t)
		ctx, cancel := context.WithCancel(ctx)
		f.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
			cancel()
			awsError(w, 500, "x")
			return true
		}
		c := newClient(t, srv.URL, f.token, nil)
		err := c.DeleteGroup(ctx, "g")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if got := f.count("DELETE", "/scim/v2/Groups/g"); got != 1 {
			t.Errorf("DELETEs = %d, want 1", got)
		}
	})
}

// TestTokenNeverLeaks: the token is fetched per request (rotation) and appears in no error and
// no log line, even at debug level.
func TestTokenNeverLeaks(t *testing.T) {
	f, srv := newFake(t)
	var calls atomic.Int32
	var logs bytes.Buffer
	f.before = func(w http.ResponseWriter, r *http.Request, n int) bool {
		awsError(w, 500, "boom")
		return true
	}
	c := newClient(t, srv.URL, "", func(cfg *client.Config) {
		cfg.Token = func(context.Context) (string, error) { calls.Add(1); return f.token, nil }
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	err := c.SetUserActive(context.Background(), "u", false)
	if err == nil {
		t.Fatal("want an error")
	}
	if calls.Load() != 4 {
		t.Errorf("token fetched %d times, want once per attempt (4)", calls.Load())
	}
	if strings.Contains(err.Error(), f.token) || strings.Contains(logs.String(), f.token) {
		t.Errorf("token leaked: err %q, logs %q", err, logs.String())
	}
	if logs.Len() == 0 {
		t.Error("no debug log of the retries")
	}
	// A failing token source is reported without retries of the request.
	c2 := newClient(t, srv.URL, "", func(cfg *client.Config) {
		cfg.Token = func(context.Context) (string, error) { return "", errors.New("secret store unavailable") }
	})
	if err := c2.DeleteUser(context.Background(), "u"); err == nil || !strings.Contains(err.Error(), "secret store unavailable") {
		t.Errorf("err = %v, want the token source's error", err)
	}
	// Wrong token: 401, not retried.
	c3 := newClient(t, srv.URL, "wrong", nil)
	var ae *client.APIError
	if err := c3.DeleteUser(context.Background(), "u"); !errors.As(err, &ae) || ae.Status != 401 || client.IsRetryable(err) {
		t.Errorf("err = %v, want a permanent 401", err)
	}
}

func TestGroupsAndMemberships(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, srv.URL, f.token, nil)
	ctx := context.Background()
	var uids []string
	for i := range 5 {
		id, err := c.CreateUser(ctx, scim.User{UserName: fmt.Sprint("u", i), DisplayName: "U", GivenName: "G", FamilyName: "F", Active: true}, "")
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, id)
	}
	gid, err := c.CreateGroup(ctx, scim.Group{ExternalID: "g-ext", DisplayName: "Team", Members: []string{"ignored"}}, uids[3:])
	if err != nil {
		t.Fatal(err)
	}
	name, ext := "Team 2", "g-ext-2"
	if err := c.PatchGroup(ctx, gid, client.GroupPatch{DisplayName: &name, ExternalID: &ext, Add: uids[:2], Remove: uids[4:]}); err != nil {
		t.Fatal(err)
	}
	patch := f.bodies[len(f.bodies)-1]
	for _, want := range []string{`{"op":"replace","path":"displayName","value":"Team 2"}`, `{"op":"add","path":"members","value":[{"value":"u-0001"},{"value":"u-0002"}]}`,
		`{"op":"remove","path":"members","value":[{"value":"u-0005"}]}`, `"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`} {
		if !strings.Contains(patch, want) {
			t.Errorf("PATCH body %s lacks %s", patch, want)
		}
	}
	before := len(f.requests)
	if err := c.PatchGroup(ctx, gid, client.GroupPatch{}); err != nil || len(f.requests) != before {
		t.Errorf("empty patch: err %v, %d requests sent", err, len(f.requests)-before)
	}
	st, err := c.ReadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []scim.TargetGroup{{ID: gid, ExternalID: "g-ext-2", DisplayName: "Team 2", Members: []string{uids[0], uids[1], uids[3]}}}
	if d := cmp.Diff(want, st.Groups); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
	g, err := c.FindGroup(ctx, "displayName", "Team 2")
	if err != nil || g == nil || g.ID != gid {
		t.Errorf("FindGroup = %+v, %v", g, err)
	}

	// Limits are checked before anything is sent.
	many := make([]string, 101)
	before = len(f.requests)
	if _, err := c.CreateGroup(ctx, scim.Group{DisplayName: "Big"}, many); err == nil {
		t.Error("CreateGroup with 101 members: want an error")
	}
	if err := c.PatchGroup(ctx, gid, client.GroupPatch{Add: many[:60], Remove: many[:41]}); err == nil {
		t.Error("PatchGroup with 101 changes: want an error")
	}
	if len(f.requests) != before {
		t.Errorf("%d requests sent for over-limit calls", len(f.requests)-before)
	}
	if err := c.DeleteGroup(ctx, gid); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteGroup(ctx, gid); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
}

func TestPaging(t *testing.T) {
	ctx := context.Background()
	seed := func(t *testing.T, c *client.Client, n int) {
		for i := range n {
			if _, err := c.CreateUser(ctx, scim.User{UserName: fmt.Sprintf("user%03d", i), DisplayName: "U", GivenName: "G", FamilyName: "F", Active: true}, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("cursor", func(t *testing.T) {
		f, srv := newFake(t)
		c := newClient(t, srv.URL, f.token, nil)
		seed(t, c, 250)
		st, err := c.ReadState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Users) != 250 {
			t.Errorf("users = %d, want 250", len(st.Users))
		}
		if got := f.count("GET", "/scim/v2/Users"); got != 3 {
			t.Errorf("user pages = %d, want 3", got)
		}
	})
	t.Run("strict target at its cap fails loudly", func(t *testing.T) {
		f, srv := newFake(t)
		c := newClient(t, srv.URL, f.token, nil)
		seed(t, c, 60)
		f.strict = true
		if _, err := c.ReadState(ctx); !errors.Is(err, client.ErrTruncated) {
			t.Errorf("ReadState = %v, want ErrTruncated", err)
		}
	})
	t.Run("strict target below its cap is complete", func(t *testing.T) {
		f, srv := newFake(t)
		c := newClient(t, srv.URL, f.token, nil)
		seed(t, c, 49)
		f.strict = true
		st, err := c.ReadState(ctx)
		if err != nil || len(st.Users) != 49 {
			t.Errorf("ReadState = %d users, %v; want 49", len(st.Users), err)
		}
	})
}

func TestNewValidates(t *testing.T) {
	tok := func(context.Context) (string, error) { return "t", nil }
	for _, cfg := range []client.Config{
		{BaseURL: "ftp://x/scim/v2", Token: tok},
		{BaseURL: "/relative", Token: tok},
		{BaseURL: "https://user:pw@x/scim/v2", Token: tok},
		{BaseURL: "https://x/scim/v2"},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("New(%q): want an error", cfg.BaseURL)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}
