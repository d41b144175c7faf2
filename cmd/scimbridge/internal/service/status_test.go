package service

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

func formHeader() http.Header {
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
}

// Names and emails the recorded runs hold, which only a signed-in page may show.
var personal = []string{"alice@example.com", "u9", "u-new-0", "conflict"}

// seedRuns records two runs: a partial full run with an error and a plan naming people, and a
// targeted webhook dry run.
func (f *fixture) seedRuns(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	id, _ := f.st.StartRun(ctx, "schedule", false, f.now.Add(-time.Hour))
	if err := f.st.FinishRun(ctx, id, state.ResultPartial, state.Counts{Created: 7, MemberAdds: 6, Failed: 1},
		[]string{`user u9: create: 409 <conflict> & "quotes"`}, "  + user \"alice@example.com\" (u1)\n", f.now.Add(-time.Hour+1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	id, _ = f.st.StartRun(ctx, "webhook", true, f.now.Add(-time.Minute))
	if err := f.st.FinishRun(ctx, id, state.ResultBlocked, state.Counts{Created: 1}, []string{"blocked by a safety guard"},
		"Targeted sync of users u-new-0.\n  + user \"alice@example.com\" (u-new-0)\n", f.now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
}

// login posts the password and returns the response and the session cookie it set, if any.
func (f *fixture) login(t *testing.T, password string, h http.Header) (*httptest.ResponseRecorder, *http.Cookie) {
	t.Helper()
	hdr := formHeader()
	for k, v := range h {
		hdr[k] = v
	}
	rec := f.do("POST", "/ui/login", url.Values{"password": {password}}.Encode(), hdr)
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			return rec, c
		}
	}
	return rec, nil
}

func withCookie(c *http.Cookie, h http.Header) http.Header {
	if h == nil {
		h = http.Header{}
	}
	if c != nil {
		h.Set("Cookie", c.Name+"="+c.Value)
	}
	return h
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// TestStatusPageCountsOnlyWithoutPassword: with no ui_password nor bearer token the page shows
// the runs' counts, and no plan, error text, selection, target URL or form.
func TestStatusPageCountsOnlyWithoutPassword(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.BearerToken, c.UIPassword = nil, nil
		c.Target = "https://scim.us-east-1.amazonaws.com/abc/scim/v2"
	})
	f.ctrl.next = f.now.Add(42 * time.Minute)
	f.seedRuns(t)
	rec := f.do("GET", "/", "", nil)
	page := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("status page: got %d, want 200", rec.Code)
	}
	for _, want := range []string{`<table id="runs">`, `<td class="r-partial">partial</td>`, `<td class="r-blocked">blocked</td>`,
		"webhook (dry run)", `<span class="muted">targeted</span>`, `<td class="num">7</td>`, "1.5s", "in 42m0s", `id="counts-only"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, leak := range append(personal, `id="plan"`, "scim.us-east-1", "<form", `name="csrf"`) {
		if strings.Contains(page, leak) {
			t.Errorf("the page shows %q to anyone", leak)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
}

// TestStatusPageSignIn: with a UI password the page shows counts and a sign-in form; the
// password starts a cookie session (HttpOnly, SameSite=Strict) under which the page shows the
// plan and a run form whose CSRF token is checked; signing out ends the session.
func TestStatusPageSignIn(t *testing.T) {
	f := newFixture(t, nil)
	f.seedRuns(t)
	page := f.do("GET", "/", "", nil).Body.String()
	if !strings.Contains(page, `id="login-form"`) || !strings.Contains(page, `type="password" name="password"`) {
		t.Errorf("no sign-in form:\n%s", page)
	}
	for _, leak := range append(personal, `id="plan"`, `id="run-form"`) {
		if strings.Contains(page, leak) {
			t.Errorf("the page shows %q before signing in", leak)
		}
	}

	// Wrong passwords, the bearer token among them, start no session.
	for _, pw := range []string{"", "nope", testToken, testUIPass[:len(testUIPass)-1], testUIPass + "x"} {
		rec, c := f.login(t, pw, nil)
		if rec.Code != 303 || rec.Header().Get("Location") != "/?flash=refused" || c != nil {
			t.Errorf("password %q: %d %s cookie %v, want 303 to /?flash=refused and no cookie", pw, rec.Code, rec.Header().Get("Location"), c)
		}
	}
	if page := f.do("GET", "/?flash=refused", "", nil).Body.String(); !strings.Contains(page, "The password was not accepted.") {
		t.Error("a refused password is not shown")
	}
	// A sign-in from another site is refused whatever the password.
	if rec, c := f.login(t, testUIPass, http.Header{"Sec-Fetch-Site": {"cross-site"}}); rec.Code != 403 || c != nil {
		t.Errorf("cross-site sign-in: %d cookie %v, want 403", rec.Code, c)
	}

	rec, cookie := f.login(t, testUIPass, http.Header{"X-Forwarded-Proto": {"https"}})
	if rec.Code != 303 || rec.Header().Get("Location") != "/" || cookie == nil {
		t.Fatalf("sign-in: got %d %s cookie %v, want 303 to / with a session cookie", rec.Code, rec.Header().Get("Location"), cookie)
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || !cookie.Secure || cookie.MaxAge <= 0 {
		t.Errorf("session cookie %+v, want HttpOnly, SameSite=Strict, Path=/, Secure (https) and a MaxAge", cookie)
	}
	if _, plain := f.login(t, testUIPass, nil); plain == nil || plain.Secure {
		t.Errorf("over plain http the cookie is %+v, want one without Secure", plain)
	}

	page = f.do("GET", "/", "", withCookie(cookie, nil)).Body.String()
	for _, want := range []string{`<pre id="plan">Targeted sync of users u-new-0.
  &#43; user &#34;alice@example.com&#34; (u-new-0)`, `409 &lt;conflict&gt; &amp; &#34;quotes&#34;`,
		"users u-new-0", `id="run-form"`, `id="logout-form"`, "Syncing into the test emulator"} {
		if !strings.Contains(page, want) {
			t.Errorf("the signed-in page lacks %q", want)
		}
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the signed-in page:\n%s", page)
	}
	csrf := m[1]
	for _, secret := range []string{testSecret, testToken, testUIPass, cookie.Value} {
		if strings.Contains(page, secret) {
			t.Errorf("the page shows a secret %q", secret)
		}
	}

	run := func(v url.Values, h http.Header) *httptest.ResponseRecorder {
		hdr := formHeader()
		for k, vs := range h {
			hdr[k] = vs
		}
		return f.do("POST", "/ui/run", v.Encode(), hdr)
	}
	refused := []struct {
		name   string
		v      url.Values
		h      http.Header
		code   int
		target string
	}{
		{"no session", url.Values{"csrf": {csrf}, "mode": {"run"}}, nil, 303, "/?flash=expired"},
		{"a made-up session", url.Values{"csrf": {csrf}, "mode": {"run"}}, withCookie(&http.Cookie{Name: sessionCookie, Value: "forged"}, nil), 303, "/?flash=expired"},
		{"no CSRF token", url.Values{"mode": {"run"}}, withCookie(cookie, nil), 403, ""},
		{"a wrong CSRF token", url.Values{"csrf": {strings.Repeat("0", len(csrf))}, "mode": {"run"}}, withCookie(cookie, nil), 403, ""},
		{"the password instead of a session", url.Values{"token": {testUIPass}, "password": {testUIPass}, "mode": {"run"}}, nil, 303, "/?flash=expired"},
		{"from another site", url.Values{"csrf": {csrf}, "mode": {"run"}}, withCookie(cookie, http.Header{"Origin": {"https://evil.example"}}), 403, ""},
	}
	for _, tt := range refused {
		rec := run(tt.v, tt.h)
		if rec.Code != tt.code || rec.Header().Get("Location") != tt.target {
			t.Errorf("%s: %d %q, want %d %q", tt.name, rec.Code, rec.Header().Get("Location"), tt.code, tt.target)
		}
	}
	if n := len(f.ctrl.requests()); n != 0 {
		t.Fatalf("%d refused forms reached the controller", n)
	}
	if rec := run(url.Values{"csrf": {csrf}, "mode": {"run"}}, withCookie(cookie, nil)); rec.Code != 303 || rec.Header().Get("Location") != "/?requested=run" {
		t.Errorf("run: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if rec := run(url.Values{"csrf": {csrf}}, withCookie(cookie, nil)); rec.Code != 303 || rec.Header().Get("Location") != "/?requested=dry-run" {
		t.Errorf("dry run: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	want := []reconcile.Request{{Trigger: "manual"}, {Trigger: "manual", DryRun: true}}
	if diff := cmp.Diff(want, f.ctrl.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	// The session ends after its time, or when signing out.
	f.now = f.now.Add(sessionTTL + time.Second)
	if page := f.do("GET", "/", "", withCookie(cookie, nil)).Body.String(); strings.Contains(page, `id="plan"`) {
		t.Error("the plan shows after the session's end")
	}
	_, cookie = f.login(t, testUIPass, nil)
	csrf = csrfRE.FindStringSubmatch(f.do("GET", "/", "", withCookie(cookie, nil)).Body.String())[1]
	rec = f.do("POST", "/ui/logout", url.Values{"csrf": {csrf}}.Encode(), withCookie(cookie, formHeader()))
	if rec.Code != 303 || rec.Header().Get("Location") != "/?flash=signed-out" {
		t.Errorf("sign out: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if page := f.do("GET", "/", "", withCookie(cookie, nil)).Body.String(); strings.Contains(page, `id="plan"`) || !strings.Contains(page, `id="login-form"`) {
		t.Error("the old session still shows the plan after signing out")
	}

	logs := f.logs.String()
	for _, s := range []string{testToken, testUIPass, "nope", cookie.Value, csrf} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q", s)
		}
	}
	if !strings.Contains(logs, "sign-in refused") {
		t.Error("refused sign-ins are not logged")
	}
}

// TestUIPasswordDefaultsToBearerToken: without ui_password the bearer token signs in.
func TestUIPasswordDefaultsToBearerToken(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.UIPassword = nil })
	if _, c := f.login(t, testToken, nil); c == nil {
		t.Error("the bearer token does not sign in when no ui_password is set")
	}
}
