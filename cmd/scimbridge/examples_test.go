package main

import (
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admin "google.golang.org/api/admin/directory/v1"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/connectors/google/googletest"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

// examplesDir is deploy/examples, seen from this package.
var examplesDir = filepath.Join("..", "..", "deploy", "examples")

// exampleConfigs lists the example configurations (every .yaml of deploy/examples but the
// quickstart's directory file).
func exampleConfigs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if filepath.Base(f) != "directory.yaml" {
			out = append(out, f)
		}
	}
	if len(out) < 7 {
		t.Fatalf("found %d example configs in %s: %v", len(out), examplesDir, out)
	}
	return out
}

// TestEveryExampleLoads loads every example with scimbridge's own loader (shape, defaults,
// validation and the mapping compiled), with no SCIMBRIDGE_* variable set: an example is valid as
// shipped (serve.yaml with the variables its comment names). active-directory.yaml is checked only here: the suite's Samba AD DC belongs to the
// connectors/ldap tests, on fixed ports.
func TestEveryExampleLoads(t *testing.T) {
	for _, name := range os.Environ() {
		if strings.HasPrefix(name, config.EnvPrefix) {
			k, _, _ := strings.Cut(name, "=")
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	// The variables serve.yaml's comment tells to set.
	t.Setenv("WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef")
	t.Setenv("UI_PASSWORD", "change-me")
	for _, f := range exampleConfigs(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := config.Load(f); err != nil {
				t.Errorf("got %v, want the example to load", err)
			}
		})
	}
}

// exampleEnv is the environment for running an example against the suite's servers: the
// process's own without any SCIMBRIDGE_* variable, plus overrides.
func exampleEnv(overrides ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, config.EnvPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, overrides...)
}

// checkExample runs `scimbridge check` on an example in a fresh working folder with env and
// returns its output; it fails the test unless check exits 0 and says everything is reachable.
func checkExample(t *testing.T, name string, env []string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runEnv(t, t.TempDir(), env, "check", "--config", abs)
	if code != 0 || !strings.Contains(out, "everything reachable") {
		t.Fatalf("check %s: exit %d\n%s\n%s", name, code, out, errOut)
	}
	return out
}

// emulatorTarget starts an emulator and returns the overrides that point an example's target at
// it (its token in a file, as the examples' token_file).
func emulatorTarget(t *testing.T, opts emulator.Options) []string {
	t.Helper()
	emu := emulatortest.Start(t, opts)
	token := filepath.Join(t.TempDir(), "scim-token")
	if err := os.WriteFile(token, []byte(emu.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"SCIMBRIDGE_TARGET_SCIM_URL=" + emu.URL, "SCIMBRIDGE_TARGET_TOKEN_FILE=" + token}
}

// TestLDIFExample: the offline example reads its export, and syncs it into the embedded Identity
// Center: a dry run shows the plan (exit 2), a sync applies it, the next says No changes.
func TestLDIFExample(t *testing.T) {
	out := checkExample(t, "ldif.yaml", exampleEnv())
	if !strings.Contains(out, "5 users, 4 groups in scope; 0 problems") {
		t.Errorf("check: got\n%s\nwant 5 users and 4 groups mapped without problems", out)
	}
	abs, _ := filepath.Abs(filepath.Join(examplesDir, "ldif.yaml"))
	dir := t.TempDir()
	env := exampleEnv()
	if out, errOut, code := runEnv(t, dir, env, "sync", "--dry-run", "--config", abs); code != 2 || !strings.Contains(out, "users 5 to create") {
		t.Fatalf("dry run: exit %d, want 2\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := runEnv(t, dir, env, "sync", "--config", abs); code != 0 {
		t.Fatalf("sync: exit %d\n%s", code, errOut)
	}
	if out, errOut, code := runEnv(t, dir, env, "sync", "--config", abs); code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("second sync: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestGenericSCIMExample checks generic-scim.yaml against the emulator acting as a plain
// RFC 7644 server, and dry-runs it there.
func TestGenericSCIMExample(t *testing.T) {
	env := exampleEnv(emulatorTarget(t, emulator.Options{StrictRFC: true})...)
	out := checkExample(t, "generic-scim.yaml", env)
	if !strings.Contains(out, "SCIM: reachable, token accepted") {
		t.Errorf("check: got\n%s\nwant the SCIM target reached", out)
	}
	abs, _ := filepath.Abs(filepath.Join(examplesDir, "generic-scim.yaml"))
	if out, errOut, code := runEnv(t, t.TempDir(), env, "sync", "--dry-run", "--config", abs); code != 2 || !strings.Contains(out, "users 15 to create") {
		t.Fatalf("dry run: exit %d, want 2\n%s\n%s", code, out, errOut)
	}
}

// TestGoogleExample checks google.yaml against the fake Directory API and token endpoint, with
// only the connection overridden (endpoint, key, target): its queries and scope are the
// example's own, so only the aws-* groups and their members count.
func TestGoogleExample(t *testing.T) {
	fake, tokens, keyFile := googleFake(t)
	person := func(id, email, given, family string, suspended bool) *admin.User {
		return &admin.User{Id: id, PrimaryEmail: email, Suspended: suspended,
			Name: &admin.UserName{GivenName: given, FamilyName: family, FullName: given + " " + family}}
	}
	fake.AddUser(
		person("u1", "alice@example.com", "Alice", "Liddell", false),
		person("u2", "bob@example.com", "Bob", "Builder", false),
		person("u3", "carol@example.com", "Carol", "Suspended", true),
		person("u4", "dave@example.com", "Dave", "Nogroup", false),
	)
	fake.AddGroup(&admin.Group{Id: "g1", Email: "aws-admins@example.com", Name: "AWS Admins"},
		&admin.Member{Id: "u1", Email: "alice@example.com", Type: "USER"})
	fake.AddGroup(&admin.Group{Id: "g2", Email: "aws-developers@example.com", Name: "AWS Developers"},
		&admin.Member{Id: "u2", Email: "bob@example.com", Type: "USER"},
		&admin.Member{Id: "u3", Email: "carol@example.com", Type: "USER"})
	fake.AddGroup(&admin.Group{Id: "g3", Email: "everyone@example.com", Name: "Everyone"},
		&admin.Member{Id: "u4", Email: "dave@example.com", Type: "USER"})
	env := exampleEnv(append(emulatorTarget(t, emulator.Options{}),
		"SCIMBRIDGE_SOURCE_GOOGLE_ENDPOINT="+fake.URL+"/",
		"SCIMBRIDGE_SOURCE_GOOGLE_SERVICE_ACCOUNT_KEY_FILE="+keyFile)...)
	out := checkExample(t, "google.yaml", env)
	if !strings.Contains(out, "2 users, 2 groups in scope") {
		t.Errorf("check: got\n%s\nwant the 2 active members of the 2 aws-* groups in scope", out)
	}
	if got := tokens.Assertions(); len(got) == 0 || got[0].Sub != "scimbridge-reader@example.com" {
		t.Errorf("got assertions %+v, want the example's subject impersonated", got)
	}
}

// googleFake starts the fake Directory API and token endpoint, and returns them with a
// service-account key file (of scimbridge@my-project.iam.gserviceaccount.com) they trust.
func googleFake(t *testing.T) (*googletest.Server, *googletest.TokenServer, string) {
	t.Helper()
	fake := googletest.New()
	t.Cleanup(fake.Close)
	tokens, err := googletest.NewTokenServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tokens.Close)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const sa = "scimbridge@my-project.iam.gserviceaccount.com"
	tokens.Trust(sa, &key.PublicKey)
	keyJSON, err := googletest.ServiceAccountKey(key, sa, tokens.URL+"/token")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "google-key.json")
	if err := os.WriteFile(keyFile, keyJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	return fake, tokens, keyFile
}

// TestOpenLDAPExample checks openldap.yaml against slapd over StartTLS with the test CA, with the
// connection, the bind account and the base DNs overridden; its aws-* scope is the example's own.
func TestOpenLDAPExample(t *testing.T) {
	s := ldaptest.StartSlapd(t, ldaptest.SlapdOptions{})
	s.Add(`dn: uid=alice,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
givenName: Alice
sn: Liddell
mail: alice@example.test

dn: uid=bob,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
givenName: Bob
sn: Builder
mail: bob@example.test

dn: cn=aws-admins,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: aws-admins
member: uid=alice,ou=people,dc=example,dc=test

dn: cn=staff,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: staff
member: uid=alice,ou=people,dc=example,dc=test
member: uid=bob,ou=people,dc=example,dc=test
`)
	pw := filepath.Join(t.TempDir(), "bind-password")
	if err := os.WriteFile(pw, []byte(ldaptest.SlapdReaderPW), 0o600); err != nil {
		t.Fatal(err)
	}
	env := exampleEnv(append(emulatorTarget(t, emulator.Options{}),
		"SCIMBRIDGE_SOURCE_LDAP_URL="+s.URL,
		"SCIMBRIDGE_SOURCE_LDAP_TLS_CA_FILE="+s.PKI.CAFile,
		"SCIMBRIDGE_SOURCE_LDAP_BIND_DN="+ldaptest.SlapdReaderDN,
		"SCIMBRIDGE_SOURCE_LDAP_BIND_PASSWORD_FILE="+pw,
		"SCIMBRIDGE_SOURCE_LDAP_USERS_BASE_DN=ou=people,"+ldaptest.SlapdSuffix,
		"SCIMBRIDGE_SOURCE_LDAP_GROUPS_BASE_DN=ou=groups,"+ldaptest.SlapdSuffix)...)
	out := checkExample(t, "openldap.yaml", env)
	if !strings.Contains(out, "1 users, 1 groups in scope") {
		t.Errorf("check: got\n%s\nwant alice and aws-admins in scope", out)
	}
}
