package ldap_test

import (
	"context"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

// wantErr fails unless err holds every part, and holds none of the not parts.
func wantErr(t *testing.T, what string, err error, parts []string, not ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one containing %q", what, parts)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q lacks %q", what, err, p)
		}
	}
	for _, p := range not {
		if strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q holds %q", what, err, p)
		}
	}
}

// TestCAFileWithANegativeSerial: a tls.ca_file holding a Samba-style self-generated CA
// certificate is reported with Go's reason and what to do, not as "holds no PEM certificate";
// GODEBUG=x509negativeserial=1 lets it be used.
func TestCAFileWithANegativeSerial(t *testing.T) {
	pki, err := ldaptest.NewSambaStylePKI(t.TempDir(), ldaptest.SambaHost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ldap.Config{
		FlavourName: ldap.FlavourActiveDirectory, URL: "ldaps://127.0.0.1:1",
		TLS:    ldap.TLSConfig{CAFile: pki.CAFile},
		Users:  ldap.UsersConfig{BaseDN: "DC=example,DC=test"},
		Groups: ldap.GroupsConfig{BaseDN: "DC=example,DC=test"},
	}
	_, err = cfg.Open(nil)
	wantErr(t, "Open", err, []string{"tls.ca_file", pki.CAFile, "x509: negative serial number",
		"give the DC a proper certificate", "GODEBUG=x509negativeserial=1"}, "holds no PEM certificate")
	t.Logf("reported: %v", err)

	t.Setenv("GODEBUG", "x509negativeserial=1")
	src, err := cfg.Open(nil)
	if err != nil {
		t.Fatalf("Open with GODEBUG=x509negativeserial=1: %v", err)
	}
	src.Close()
}

// TestSambaSelfGeneratedCertificate runs LDAPS and StartTLS against the Samba AD DC serving a
// certificate shaped like the one it generates for itself (negative serial, no subject
// alternative names): every refusal names Go's reason and what to do; the escape hatches work.
func TestSambaSelfGeneratedCertificate(t *testing.T) {
	s := adSamba(t)
	pki, err := ldaptest.NewSambaStylePKI(t.TempDir(), ldaptest.SambaHost)
	if err != nil {
		t.Fatal(err)
	}
	s.RestartWithTLS(t, pki)
	noSANs := "a Samba AD DC's self-generated certificate has no subject alternative names"
	for _, tc := range []struct {
		name    string
		godebug bool
		mod     func(c *ldap.Config)
		want    []string // parts of the Read error; none: the read succeeds
	}{
		{name: "ldaps, another CA trusted", mod: func(c *ldap.Config) { c.TLS.CAFile = s.PKI.CAFile },
			want: []string{"ldaps://127.0.0.1", "tls: failed to parse certificate from server: x509: negative serial number", "GODEBUG=x509negativeserial=1"}},
		{name: "starttls, verification off", mod: func(c *ldap.Config) {
			c.URL, c.StartTLS, c.TLS.CAFile, c.TLS.InsecureSkipVerify = s.URL, true, "", true
		}, want: []string{"starttls", "x509: negative serial number", "needed even with tls.insecure_skip_verify"}},
		{name: "ldaps by address, GODEBUG set", godebug: true,
			want: []string{"cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs", noSANs}},
		{name: "ldaps by host name, GODEBUG set", godebug: true, mod: func(c *ldap.Config) { c.TLS.ServerName = ldaptest.SambaHost },
			want: []string{"x509: certificate relies on legacy Common Name field", noSANs}},
		{name: "starttls by host name, GODEBUG set", godebug: true, mod: func(c *ldap.Config) {
			c.URL, c.StartTLS, c.TLS.ServerName = s.URL, true, ldaptest.SambaHost
		}, want: []string{"starttls", "legacy Common Name field", noSANs}},
		{name: "ldaps, GODEBUG set, verification off", godebug: true, mod: func(c *ldap.Config) { c.TLS.InsecureSkipVerify = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.godebug {
				t.Setenv("GODEBUG", "x509negativeserial=1")
			}
			cfg := adConfig(s)
			cfg.URL, cfg.StartTLS, cfg.TLS.CAFile = s.LDAPSURL, false, pki.CAFile
			cfg.Users.Filter = "(&(objectCategory=person)(objectClass=user)(!(sAMAccountName=bulk*)))"
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			src, err := cfg.Open(nil)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer src.Close()
			dir, err := src.Read(context.Background())
			if tc.want == nil {
				if err != nil || len(dir.Users) != 4 {
					t.Fatalf("Read: %v", err)
				}
				return
			}
			wantErr(t, "Read", err, tc.want, "holds no PEM certificate")
			t.Logf("reported: %v", err)
		})
	}
}
