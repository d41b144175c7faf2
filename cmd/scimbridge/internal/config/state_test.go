package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

const stateSource = `
source:
  type: file
  file: {path: directory.yaml}
`

// TestStateURLMistakesAreAllReported: two stores at once, both url and url_file, and a URL that
// is not PostgreSQL's are reported together, and no message shows the URL or its password.
func TestStateURLMistakesAreAllReported(t *testing.T) {
	c, err := Parse([]byte(stateSource+`
state:
  path: /var/lib/scimbridge/state.db
  url: mysql://app:hunter2-xyz@db/state
  url_file: /run/secrets/state-url
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	dsn, err := Parse([]byte(stateSource+`
state:
  url: host=db user=app password=hunter2-xyz
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want three state errors")
	}
	dsnErr := dsn.Validate()
	if dsnErr == nil {
		t.Fatal("Validate() of a keyword/value connection string = nil, want an error")
	}
	msg := err.Error() + "\n" + dsnErr.Error()
	for _, want := range []string{
		"state.url and state.url_file are both set; use one",
		"state.path and state.url are both set",
		`state.url: invalid secret reference: the value is written like a URL or reference, with the unknown scheme "mysql"`,
		"state.url: not a postgres:// or postgresql:// URL, nor a secret reference (the value is not shown)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q; got:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("an error shows the password:\n%s", msg)
	}
}

// TestStateLocation: the SQLite file by default; with state.url the PostgreSQL URL, literal or
// fetched through a reference, described without its password.
func TestStateLocation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "scimbridge.yaml")
	for _, tc := range []struct {
		name, state, wantLoc, wantDesc string
		pg                             bool
	}{
		{"default", "", filepath.Join("data", "state.db"), filepath.Join("data", "state.db"), false},
		{"literal url", "state: {url: 'postgres://app:hunter2@db:5432/state?sslmode=verify-full'}",
			"postgres://app:hunter2@db:5432/state?sslmode=verify-full", "postgres://app:xxxxx@db:5432/state?sslmode=verify-full", true},
		{"reference", "state: {url: env://STATE_URL_TEST}",
			"postgres://app:hunter2@db/state", "the PostgreSQL database named by env://STATE_URL_TEST", true},
		{"url file", "state: {url_file: url.txt}",
			"postgresql://app:hunter2@db/state", "the PostgreSQL database named in " + filepath.Join(dir, "url.txt"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STATE_URL_TEST", "postgres://app:hunter2@db/state")
			if err := os.WriteFile(filepath.Join(dir, "url.txt"), []byte("postgresql://app:hunter2@db/state\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(stateSource+tc.state+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			loc, err := c.StateLocation(ctx, secret.NewResolver(secret.ResolverOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			if loc != tc.wantLoc || c.StateDescription() != tc.wantDesc || c.UsesPostgres() != tc.pg {
				t.Errorf("got location %q, description %q, postgres %v; want %q, %q, %v",
					loc, c.StateDescription(), c.UsesPostgres(), tc.wantLoc, tc.wantDesc, tc.pg)
			}
		})
	}
	// A reference that resolves to something else is refused without showing it.
	t.Setenv("STATE_URL_TEST", "mysql://app:hunter2@db/state")
	if err := os.WriteFile(path, []byte(stateSource+"state: {url: env://STATE_URL_TEST}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.StateLocation(ctx, secret.NewResolver(secret.ResolverOptions{}))
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "state.url") {
		t.Errorf("StateLocation of a non-PostgreSQL reference: got %v, want an error naming state.url without the value", err)
	}
}
