package config

import (
	"strings"
	"testing"
)

// TestMistypedSecretReferencesAreConfigErrors: a secret written like a reference with a wrong or
// misspelt scheme is a config error naming its key (all of them at once), never used as the
// literal secret; the values never show.
func TestMistypedSecretReferencesAreConfigErrors(t *testing.T) {
	c, err := Parse([]byte(`
source:
  type: ldap
  ldap:
    flavour: openldap
    url: ldaps://ldap.example.com
    bind_dn: cn=reader,dc=example,dc=com
    bind_password: "env:LDAP_PW_XYZ"
    users: {base_dn: "ou=people,dc=example,dc=com"}
    groups: {base_dn: "ou=groups,dc=example,dc=com"}
target:
  scim_url: https://scim.example.com/t/scim/v2
  token: file:/run/secrets/scim-token-xyz
service:
  webhook_secret: aws-secretmanager://prod/hook-xyz
  bearer_token: "Pass:word-xyz"
  ui_password: env://UI_PASSWORD
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors for three mistyped references")
	}
	msg := err.Error()
	t.Logf("reported:\n%s", msg)
	for _, want := range []string{
		"source.ldap.bind_password: invalid secret reference: env references are written env://VARIABLE (a literal value that starts this way goes in source.ldap.bind_password_file)",
		"target.token: invalid secret reference: file references are written file:///absolute/path (a literal value that starts this way goes in target.token_file)",
		`service.webhook_secret: invalid secret reference: unknown scheme "aws-secretmanager"; did you mean aws-secretsmanager://NAME[#json-key]?`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q", want)
		}
	}
	for _, fine := range []string{"service.bearer_token", "service.ui_password"} {
		if strings.Contains(msg, fine) {
			t.Errorf("errors mention %s, whose value is a literal or a valid reference", fine)
		}
	}
	if strings.Contains(msg, "xyz") || strings.Contains(msg, "XYZ") {
		t.Errorf("errors show a value")
	}
}
