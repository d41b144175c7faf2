package service

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// doFrom sends a request from a client address.
func (f *fixture) doFrom(addr, method, path, body string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = addr
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

// TestAuthThrottle: after 5 failed authentications in a minute (bearer token, sign-in password,
// signature) an address is answered 429, even with the right token, until its allowance
// refills (one attempt per 12 s); other addresses are not affected; the spell is logged once.
func TestAuthThrottle(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AuthFailuresPerMinute = 0 }) // the default, 5
	const attacker, other = "198.51.100.7:40000", "203.0.113.9:40000"
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	fails := []func() *httptest.ResponseRecorder{
		func() *httptest.ResponseRecorder {
			return f.doFrom(attacker, "POST", "/v1/sync", "", bearer("guess-1"))
		},
		func() *httptest.ResponseRecorder {
			return f.doFrom(attacker, "POST", "/v1/sync", "", bearer("guess-2"))
		},
		func() *httptest.ResponseRecorder {
			return f.doFrom(attacker, "POST", "/ui/login", url.Values{"password": {"guess-3"}}.Encode(), formHeader())
		},
		func() *httptest.ResponseRecorder {
			return f.doFrom(attacker, "POST", "/v1/sync", "{}", signed("guess-4", f.now, "{}"))
		},
		func() *httptest.ResponseRecorder {
			return f.doFrom(attacker, "POST", "/v1/sync", "", bearer("guess-5"))
		},
	}
	for i, do := range fails {
		if rec := do(); rec.Code != 401 && rec.Code != 303 {
			t.Fatalf("failed attempt %d: %d, want 401 (or 303 back to the sign-in)", i+1, rec.Code)
		}
	}
	// The sixth attempt is refused before its token is looked at, right or wrong.
	for _, tok := range []string{"guess-6", testToken} {
		rec := f.doFrom(attacker, "POST", "/v1/sync", "", bearer(tok))
		if rec.Code != 429 || rec.Header().Get("Retry-After") != "12" {
			t.Errorf("attempt with %q after 5 failures: %d Retry-After %q, want 429 and 12", tok, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	if rec := f.doFrom(attacker, "POST", "/ui/login", url.Values{"password": {testUIPass}}.Encode(), formHeader()); rec.Code != 429 {
		t.Errorf("sign-in while throttled: %d, want 429", rec.Code)
	}
	if rec := f.doFrom(other, "POST", "/v1/sync", "", bearer(testToken)); rec.Code != 202 {
		t.Errorf("another address: %d, want 202", rec.Code)
	}
	if n := len(f.ctrl.requests()); n != 1 {
		t.Errorf("%d requests reached the controller, want 1 (the other address's)", n)
	}
	// 12 s later one attempt is allowed again.
	f.now = f.now.Add(12 * time.Second)
	if rec := f.doFrom(attacker, "POST", "/v1/sync", "", bearer(testToken)); rec.Code != 202 {
		t.Errorf("after 12 s: %d, want 202", rec.Code)
	}
	if rec := f.doFrom(attacker, "POST", "/v1/sync", "", bearer("guess-7")); rec.Code != 401 {
		t.Errorf("a wrong token after 12 s: %d, want 401", rec.Code)
	}
	if rec := f.doFrom(attacker, "POST", "/v1/sync", "", bearer(testToken)); rec.Code != 429 {
		t.Errorf("after using the refilled attempt: %d, want 429", rec.Code)
	}
	logs := f.logs.String()
	if n := strings.Count(logs, "authentication throttled"); n != 2 {
		t.Errorf("%d warn lines for two throttled spells, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs, "attempts_left=0") {
		t.Error("the failed attempts are not logged with what is left")
	}
	// IPv6 clients are counted per /64.
	for i := range 5 {
		f.doFrom("[2001:db8:1:2::"+string(rune('a'+i))+"]:5000", "POST", "/v1/sync", "", bearer("guess"))
	}
	if rec := f.doFrom("[2001:db8:1:2::ff]:5000", "POST", "/v1/sync", "", bearer(testToken)); rec.Code != 429 {
		t.Errorf("another address of the same IPv6 /64: %d, want 429", rec.Code)
	}
}

func TestSecretDigest(t *testing.T) {
	d := newSecretDigest([]byte("k"), []byte("s3cret"))
	for _, tt := range []struct {
		guess string
		want  bool
	}{{"s3cret", true}, {"", false}, {"s3cre", false}, {"s3cret ", false}, {"S3cret", false}} {
		if got := d.equal([]byte(tt.guess)); got != tt.want {
			t.Errorf("equal(%q) = %v, want %v", tt.guess, got, tt.want)
		}
	}
	if none := newSecretDigest([]byte("k"), nil); none.set() || none.equal(nil) || none.equal([]byte("")) {
		t.Error("an unset secret matches")
	}
}

// TestSyncWebhookBody: a signed body must be one JSON value that names a non-empty selection
// (or nothing, for a full sync); trailing data and empty or blank selections answer 400.
func TestSyncWebhookBody(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
		req  *reconcile.Request
	}{
		{"trailing garbage", `{"users":["u1"]} x`, 400, nil},
		{"a second JSON value", `{"users":["u1"]}{"users":["u2"]}`, 400, nil},
		{"an empty object then an array", `{} []`, 400, nil},
		{"empty users", `{"users":[]}`, 400, nil},
		{"empty groups", `{"groups":[]}`, 400, nil},
		{"both empty", `{"users":[],"groups":[],"dry_run":true}`, 400, nil},
		{"a blank id", `{"users":["  "]}`, 400, nil},
		{"an empty id", `{"groups":[""]}`, 400, nil},
		{"a null id", `{"users":[null]}`, 400, nil},
		{"null users", `{"users":null}`, 400, nil},
		{"users not a list", `{"users":"u1"}`, 400, nil},
		{"invalid UTF-8 in an id", "{\"users\":[\"a\xe1b\"]}", 400, nil},
		{"no body: a full sync", ``, 202, &reconcile.Request{Trigger: "webhook"}},
		{"an empty object: a full sync", `{}`, 202, &reconcile.Request{Trigger: "webhook"}},
		{"a full dry run", `{"dry_run":true}`, 202, &reconcile.Request{Trigger: "webhook", DryRun: true}},
		{"trailing white space", "{\"users\":[\"u1\"]}\n\t ", 202, &reconcile.Request{Trigger: "webhook", Only: reconcile.Selection{Users: []string{"u1"}}}},
		{"empty users, some groups", `{"users":[],"groups":["g1"]}`, 202, &reconcile.Request{Trigger: "webhook", Only: reconcile.Selection{Groups: []string{"g1"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rec := f.do("POST", "/v1/sync", tt.body, signed(testSecret, f.now, tt.body))
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
			var want []reconcile.Request
			if tt.req != nil {
				want = []reconcile.Request{*tt.req}
			}
			if diff := cmp.Diff(want, f.ctrl.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if tt.want == 400 && !strings.Contains(f.logs.String(), "body") {
				t.Errorf("the refusal's reason is not logged:\n%s", f.logs)
			}
		})
	}
}
