package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

// TestSecretsResolveThroughTheGivenResolver: the config's secrets and the source connector's
// resolve their references through the Resolver the program passes in (here one whose
// environment holds the values the process's does not), not through a process-wide one.
func TestSecretsResolveThroughTheGivenResolver(t *testing.T) {
	lookup := env(map[string]string{"SB_TOKEN": "tok-1", "SB_HOOK": "hook-1", "SB_BIND": "bind-1"})
	secrets := secret.NewResolver(secret.ResolverOptions{LookupEnv: lookup})
	c, err := Parse([]byte(`
source:
  type: ldap
  ldap:
    flavour: openldap
    url: ldap://127.0.0.1:1
    bind_dn: cn=reader,dc=example,dc=com
    bind_password: env://SB_BIND
    users: {base_dn: "dc=example,dc=com"}
    groups: {base_dn: "dc=example,dc=com"}
target: {scim_url: https://scim.example.com/scim/v2, token: env://SB_TOKEN}
service: {webhook_secret: env://SB_HOOK}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"SB_TOKEN", "SB_HOOK", "SB_BIND"} {
		if _, set := os.LookupEnv(name); set {
			t.Skipf("%s is set in the process environment", name)
		}
	}
	tok, err := c.SCIMToken(t.Context(), secrets)
	if err != nil || tok.Reveal() != "tok-1" {
		t.Errorf("SCIMToken = %d bytes, %v; want the value from the given resolver", len(tok.Reveal()), err)
	}
	hook, err := c.WebhookSecret(t.Context(), secrets)
	if err != nil || hook.Reveal() != "hook-1" {
		t.Errorf("WebhookSecret = %d bytes, %v; want the value from the given resolver", len(hook.Reveal()), err)
	}
	src, err := c.OpenSource(nil, secrets) // resolves the bind password; dials only on Read
	if err != nil {
		t.Fatalf("OpenSource with the given resolver: %v", err)
	}
	_ = src.Close()
	// Without it (nil: the default options, the process environment) the same references fail,
	// naming the key and the reference.
	if _, err := c.SCIMToken(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "target.token: env://SB_TOKEN") {
		t.Errorf("SCIMToken without the resolver: %v, want a not-set error naming the key", err)
	}
	if _, err := c.OpenSource(nil, nil); err == nil || !strings.Contains(err.Error(), "bind_password") {
		t.Errorf("OpenSource without the resolver: %v, want a not-set error naming bind_password", err)
	}
}

// TestSecretFilesAreReadRelativeToTheConfig keeps *_file secrets beside the config file.
func TestSecretFilesAreReadRelativeToTheConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tok"), []byte("from-file\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "d.yaml"), []byte("users: []\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("source: {type: file, file: {path: d.yaml}}\ntarget: {scim_url: https://scim.example.com/scim/v2, token_file: tok}\n"), 0o600)
	c, err := Load(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.SCIMToken(t.Context(), secret.NewResolver(secret.ResolverOptions{}))
	if err != nil || tok.Reveal() != "from-file" {
		t.Errorf("SCIMToken = %d bytes, %v; want the file's content", len(tok.Reveal()), err)
	}
}
