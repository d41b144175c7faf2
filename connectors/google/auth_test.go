package google

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/google/googletest"
	"github.com/scimbridge/scimbridge/connectors/secret"
)

func TestServiceAccountKeyTokenFlow(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	e.fake.RequireBearer("fake-access-token-1")
	s := e.open(t, nil)
	if _, err := s.Read(context.Background()); err != nil {
		t.Fatalf("Read: %v", err)
	}
	// One token for the whole read (reused), from one verified RS256 assertion.
	got := e.tokens.Assertions()
	want := []googletest.Claims{{
		Iss:   testSA,
		Sub:   testSubject,
		Scope: "https://www.googleapis.com/auth/admin.directory.user.readonly https://www.googleapis.com/auth/admin.directory.group.readonly",
		Aud:   e.tokens.URL + "/token",
	}}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool {
		n := p.Last().String()
		return n == ".Iat" || n == ".Exp"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("assertions (-want +got):\n%s", diff)
	}
	if len(got) == 1 && (got[0].Exp <= got[0].Iat || got[0].Exp-got[0].Iat > 3600) {
		t.Errorf("assertion lifetime iat %d exp %d", got[0].Iat, got[0].Exp)
	}
}

func TestServiceAccountKeyFileAndCheck(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, []byte(e.cfg.ServiceAccountKey.Reveal()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := e.open(t, func(c *Config) { c.ServiceAccountKey, c.ServiceAccountKeyFile = "", path })
	var checker connectors.Checker = s
	rep, err := checker.Check(context.Background())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if want := testSubject + " (via " + testSA + ")"; rep.Identity != want {
		t.Errorf("identity = %q, want %q", rep.Identity, want)
	}
	for k, v := range map[string]string{"users": "4", "groups": "2", "customer": "my_customer", "auth": "service-account key"} {
		if rep.Details[k] != v {
			t.Errorf("details[%s] = %q, want %q (all: %v)", k, rep.Details[k], v, rep.Details)
		}
	}
	if !strings.HasPrefix(rep.Details["feed"], "available") {
		t.Errorf("details[feed] = %q, want available", rep.Details["feed"])
	}
	e.fake.FailPage("/admin/reports/v1/activity/users/all/applications/admin", 1, 1, http.StatusForbidden, "forbidden")
	if rep, err = checker.Check(context.Background()); err != nil || !strings.HasPrefix(rep.Details["feed"], "unavailable") ||
		!strings.Contains(rep.Details["feed"], "admin.reports.audit.readonly") {
		t.Errorf("Check with the Reports API refused: feed %q, err %v", rep.Details["feed"], err)
	}
}

func TestUntrustedKeyFailsWithoutLeaking(t *testing.T) {
	e := newEnv(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyJSON, err := googletest.ServiceAccountKey(other, "intruder@fake-project.iam.gserviceaccount.com", e.tokens.URL+"/token")
	if err != nil {
		t.Fatal(err)
	}
	s := e.open(t, func(c *Config) { c.ServiceAccountKey = secret.Secret(keyJSON) })
	_, err = s.Read(context.Background())
	if err == nil {
		t.Fatal("Read with an untrusted key succeeded")
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "MII") {
		t.Errorf("error leaks the key: %v", err)
	}
	if len(e.fake.Requests()) != 0 {
		t.Errorf("directory requests sent without a token: %d", len(e.fake.Requests()))
	}
}

func TestMalformedKeyIsAnAuthError(t *testing.T) {
	const leaky = `{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nnot-a-key`
	c := Config{Subject: testSubject, ServiceAccountKey: leaky}
	_, err := c.Open(slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Open error = %v, want ErrAuth", err)
	}
	if strings.Contains(err.Error(), "not-a-key") || strings.Contains(err.Error(), "BEGIN") {
		t.Errorf("error leaks the key: %v", err)
	}
}

// rewrite sends requests for Google's IAM Credentials and OAuth hosts to the fake token
// server, with the ambient credentials a workload would have.
type rewrite struct{ to *url.URL }

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Host {
	case "iamcredentials.googleapis.com", "oauth2.googleapis.com":
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host, req.Host = r.to.Scheme, r.to.Host, ""
		req.Header.Set("Authorization", "Bearer ambient-workload-token")
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestImpersonatedCredentialsTokenFlow(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	e.fake.RequireBearer("fake-access-token-1")
	to, _ := url.Parse(e.tokens.URL)
	c := e.cfg
	c.ServiceAccountKey = ""
	c.ImpersonateServiceAccount = "dwd@fake-project.iam.gserviceaccount.com"
	s, err := c.open(slog.New(slog.DiscardHandler), &http.Client{Transport: rewrite{to: to}})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	rep, err := s.Check(context.Background())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if rep.Details["auth"] != "impersonated credentials" || !strings.Contains(rep.Identity, c.ImpersonateServiceAccount) {
		t.Errorf("check report = %+v", rep)
	}
	// Check reads the directory, then opens the change feed, whose token alone asks for the
	// Reports scope as well.
	if diff := cmp.Diff([]string{c.ImpersonateServiceAccount, c.ImpersonateServiceAccount}, e.tokens.SignJWTCalls()); diff != "" {
		t.Errorf("signJwt calls (-want +got):\n%s", diff)
	}
	got := e.tokens.Assertions()
	if len(got) != 2 {
		t.Fatalf("assertions = %+v, want two", got)
	}
	if got[1].Sub != testSubject || got[1].Scope != strings.Join(FeedScopes, " ") {
		t.Errorf("the feed's assertion claims = %+v", got[1])
	}
	if got[0].Sub != testSubject || got[0].Iss != c.ImpersonateServiceAccount ||
		got[0].Scope != strings.Join(Scopes, " ") || got[0].Aud != "https://oauth2.googleapis.com/token" {
		t.Errorf("assertion claims = %+v", got[0])
	}
}
