package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors/file"
	"github.com/scimbridge/scimbridge/connectors/google"
	"github.com/scimbridge/scimbridge/connectors/ldap"
)

// writeConfig writes a config file and the directory file its source names into dir.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "d.yaml"), []byte("users: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadResolvesEveryPathAgainstTheConfigFolder: run from another working directory, every key
// that names a file comes back joined to the config's folder, one check per key; absolute paths
// stay; data_dir stays relative to the working directory.
func TestLoadResolvesEveryPathAgainstTheConfigFolder(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(t.TempDir())
	p := writeConfig(t, dir, `
source: {type: file, file: {path: d.yaml}}
target:
  scim_url: https://scim.example.com/scim/v2
  token_file: secrets/token
  ca_file: ca/bundle.pem
  embedded: {data_file: ic/identity-center.db}
state: {path: st/state.db}
service:
  webhook_secret_file: secrets/hook
  bearer_token_file: /run/secrets/bearer
  ui_password_file: ../ui
data_dir: data
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, got, want string }{
		{"source.file.path", c.Source.File.Path, filepath.Join(dir, "d.yaml")},
		{"target.token_file", c.Target.TokenFile, filepath.Join(dir, "secrets/token")},
		{"target.ca_file", c.Target.CAFile, filepath.Join(dir, "ca/bundle.pem")},
		{"target.embedded.data_file", c.EmbeddedDataFile(), filepath.Join(dir, "ic/identity-center.db")},
		{"state.path", c.StatePath(), filepath.Join(dir, "st/state.db")},
		{"service.webhook_secret_file", c.Service.WebhookSecretFile, filepath.Join(dir, "secrets/hook")},
		{"service.bearer_token_file", c.Service.BearerTokenFile, "/run/secrets/bearer"},
		{"service.ui_password_file", c.Service.UIPasswordFile, filepath.Join(filepath.Dir(dir), "ui")},
		{"data_dir", c.DataDir, "data"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}
}

// TestLoadResolvesSourcePaths covers the LDAP and Google connectors' files: an LDIF export beside
// the config, and the keys of a server config, one check per key.
func TestLoadResolvesSourcePaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(t.TempDir())
	c, err := Load(writeConfig(t, dir, `
source:
  type: ldap
  ldap: {flavour: openldap, ldif_file: export.ldif, users: {base_dn: "dc=example,dc=com"}, groups: {base_dn: "dc=example,dc=com"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Source.LDAP.LDIFFile, filepath.Join(dir, "export.ldif"); got != want {
		t.Errorf("source.ldap.ldif_file = %q, want %q", got, want)
	}

	c, err = decode([]byte(`
source:
  type: ldap
  ldap:
    bind_password_file: pw
    tls: {ca_file: tls/ca.pem, cert_file: tls/client.pem, key_file: tls/client.key}
    kerberos: {keytab: krb/reader.keytab, krb5_conf: /etc/krb5.conf}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.resolvePaths(dir)
	l := c.Source.LDAP
	for _, tc := range []struct{ key, got, want string }{
		{"source.ldap.bind_password_file", l.BindPasswordFile, filepath.Join(dir, "pw")},
		{"source.ldap.tls.ca_file", l.TLS.CAFile, filepath.Join(dir, "tls/ca.pem")},
		{"source.ldap.tls.cert_file", l.TLS.CertFile, filepath.Join(dir, "tls/client.pem")},
		{"source.ldap.tls.key_file", l.TLS.KeyFile, filepath.Join(dir, "tls/client.key")},
		{"source.ldap.kerberos.keytab", l.Kerberos.Keytab, filepath.Join(dir, "krb/reader.keytab")},
		{"source.ldap.kerberos.krb5_conf", l.Kerberos.Krb5Conf, "/etc/krb5.conf"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}

	c, err = Load(writeConfig(t, dir, `
source:
  type: google
  google: {subject: admin@example.com, service_account_key_file: keys/sa.json}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Source.Google.ServiceAccountKeyFile, filepath.Join(dir, "keys/sa.json"); got != want {
		t.Errorf("source.google.service_account_key_file = %q, want %q", got, want)
	}
}

// TestEveryFileKeyIsResolved: a key added later that names a file (*_file, path, keytab,
// krb5_conf) must be in filePaths, or be data_dir, the one documented exception.
func TestEveryFileKeyIsResolved(t *testing.T) {
	c := &Config{Source: Source{File: &file.Config{}, LDAP: &ldap.Config{Kerberos: &ldap.KerberosConfig{}}, Google: &google.Config{}}}
	var resolved []string
	for _, p := range c.filePaths() {
		resolved = append(resolved, p.key)
	}
	var fileKeys []string
	for _, v := range EnvVars() {
		last := v.Key[strings.LastIndex(v.Key, ".")+1:]
		if strings.HasSuffix(last, "_file") || last == "path" || last == "keytab" || last == "krb5_conf" {
			fileKeys = append(fileKeys, v.Key)
		}
	}
	slices.Sort(resolved)
	slices.Sort(fileKeys)
	if diff := cmp.Diff(resolved, fileKeys); diff != "" {
		t.Errorf("keys resolved against the config folder (-got +want):\n%s", diff)
	}
}
