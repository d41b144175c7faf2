package ldap_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

// bigGroup is the size of the group that needs AD range retrieval (more than 1,500 members).
const bigGroup = 1600

// adFixture creates, in one transaction through Samba's own bindings (seconds, where ldapadd
// of 1,600 users takes about 50 s here): OU=Staff with alice, bob (disabled), carol and a
// non-ASCII Jürgen Müller; OU=Outside with eve; groups G1 > G2 > G3 nested three deep; and a
// group Big of 1,600 users under OU=Bulk,OU=Staff.
const adFixture = `
import sys
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
lp = LoadParm(); lp.load(sys.argv[1])
db = SamDB(url=sys.argv[2], session_info=system_session(), lp=lp)
B = "DC=example,DC=test"
db.transaction_start()
for ou in ["OU=Staff", "OU=Groups", "OU=Outside", "OU=Bulk,OU=Staff", "OU=Service"]:
    db.add({"dn": ou + "," + B, "objectClass": "organizationalUnit"})
def user(cn, sam, ou, uac, **extra):
    dn = "CN=%s,%s,%s" % (cn, ou, B)
    e = {"dn": dn, "objectClass": "user", "sAMAccountName": sam, "userPrincipalName": sam + "@example.test",
         "userAccountControl": str(uac)}
    e.update(extra)
    db.add(e)
    return dn
alice = user("Alice Archer", "alice", "OU=Staff", 544, givenName="Alice", sn="Archer", mail="alice@example.test",
             displayName="Alice Archer", department="Engineering", employeeID="E-1")
bob = user("Bob Baker", "bob", "OU=Staff", 546, givenName="Bob", sn="Baker", displayName="Bob Baker", manager=alice)
carol = user("Carol Cruz", "carol", "OU=Staff", 544, givenName="Carol", sn="Cruz")
jm = user("Jürgen Müller", "jmueller", "OU=Staff", 544, givenName="Jürgen", sn="Müller", displayName="Jürgen Müller")
eve = user("Eve Outside", "eve", "OU=Outside", 544)
def group(cn, members):
    dn = "CN=%s,OU=Groups,%s" % (cn, B)
    e = {"dn": dn, "objectClass": "group", "sAMAccountName": cn}
    if members:
        e["member"] = members
    db.add(e)
    return dn
g3 = group("G3", [carol, jm])
g2 = group("G2", [bob, g3])
g1 = group("G1", [alice, g2, eve])
bulk = [user("bulk%04d" % i, "bulk%04d" % i, "OU=Bulk,OU=Staff", 544, givenName="Bulk", sn="%04d" % i)
        for i in range(int(sys.argv[3]))]
group("Big", bulk)
db.transaction_commit()
`

var adOnce sync.Once

func adSamba(t testing.TB) *ldaptest.Samba {
	t.Helper()
	s := ldaptest.SharedSamba(t)
	adOnce.Do(func() {
		start := time.Now()
		s.Python(t, adFixture, fmt.Sprint(bigGroup))
		s.Tool(t, "user", "add", "scimreader", "Reader-Passw0rd!x", "--userou=OU=Service")
		// Windows registers ldap/<dc> on the DC account; Samba only HOST/, so add it.
		s.Tool(t, "spn", "add", "ldap/"+ldaptest.SambaHost, "DC1$")
		t.Logf("samba: provisioned in %v, started in %v, fixture (%d users) loaded in %v",
			s.ProvisionTime.Round(time.Millisecond), s.StartTime.Round(time.Millisecond), bigGroup+6, time.Since(start).Round(time.Millisecond))
	})
	return s
}

func adConfig(s *ldaptest.Samba) ldap.Config {
	return ldap.Config{
		FlavourName:  ldap.FlavourActiveDirectory,
		URL:          s.URL,
		StartTLS:     true,
		TLS:          ldap.TLSConfig{CAFile: s.PKI.CAFile},
		BindDN:       ldaptest.SambaAdmin,
		BindPassword: ldaptest.SambaPassword,
		Users:        ldap.UsersConfig{BaseDN: "OU=Staff," + ldaptest.SambaBaseDN},
		Groups:       ldap.GroupsConfig{BaseDN: "OU=Groups," + ldaptest.SambaBaseDN},
	}
}

func TestSambaRead(t *testing.T) {
	s := adSamba(t)
	dir := read(t, adConfig(s), nil)

	if len(dir.Users) != 4+bigGroup {
		t.Errorf("got %d users, want %d", len(dir.Users), 4+bigGroup)
	}
	if _, ok := byKey(dir.Users, "eve"); ok {
		t.Errorf("eve (OU=Outside) was read")
	}
	for sam, want := range map[string]string{"alice": "false", "bob": "true", "carol": "false", "jmueller": "false"} {
		u, ok := byKey(dir.Users, sam)
		if !ok {
			t.Fatalf("user %s missing", sam)
		}
		if got := u.Get(ldap.DisabledAttribute); got != want {
			t.Errorf("%s: %s = %q, want %q (userAccountControl %s)", sam, ldap.DisabledAttribute, got, want, u.Get("userAccountControl"))
		}
		// The canonical objectGUID, as samba-tool prints it.
		out := s.Tool(t, "user", "show", sam, "--attributes=objectGUID")
		m := regexp.MustCompile(`objectGUID: ([0-9a-f-]{36})`).FindStringSubmatch(out)
		if m == nil || u.ID != m[1] {
			t.Errorf("%s: ID %q, samba-tool says %q", sam, u.ID, out)
		}
		if u.Get("objectGUID") != u.ID || !strings.HasPrefix(u.Get("objectSid"), "S-1-5-21-") {
			t.Errorf("%s: objectGUID %q, objectSid %q not rendered canonically", sam, u.Get("objectGUID"), u.Get("objectSid"))
		}
	}
	jm, _ := byKey(dir.Users, "jmueller")
	if jm.Get("displayName") != "Jürgen Müller" || !slices.Contains(jm.Keys, "cn=jürgen müller,ou=staff,dc=example,dc=test") {
		t.Errorf("non-ASCII user: displayName %q keys %q", jm.Get("displayName"), jm.Keys)
	}
	bob, _ := byKey(dir.Users, "bob")
	if m, ok := byKey(dir.Users, bob.Get("manager")); !ok || m.Get("sAMAccountName") != "alice" {
		t.Errorf("bob's manager %q does not resolve to alice", bob.Get("manager"))
	}

	groups := membersByName(t, dir)
	want := map[string][]string{
		"G1": {"alice", "G2", "eve (unresolved)"},
		"G2": {"bob", "G3"},
		"G3": {"carol", "jmueller"},
	}
	for name, w := range want {
		slices.Sort(w)
		if diff := cmp.Diff(w, groups[name]); diff != "" {
			t.Errorf("client-side members of %s (-want +got):\n%s", name, diff)
		}
	}
	if got := len(groups["Big"]); got != bigGroup || slices.Contains(groups["Big"], "(unresolved)") {
		t.Errorf("Big has %d resolvable members, want %d (range retrieval)", got, bigGroup)
	}
}

// membersByName resolves each group's members to sAMAccountNames (groups by cn).
func membersByName(t *testing.T, dir *connectors.Directory) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, g := range dir.Groups {
		var names []string
		for _, m := range g.Members {
			if u, ok := byKey(dir.Users, m); ok {
				names = append(names, u.Get("sAMAccountName"))
			} else if gg, ok := byKey(dir.Groups, m); ok {
				names = append(names, gg.Get("cn"))
			} else if strings.HasPrefix(m, "cn=eve outside,") {
				names = append(names, "eve (unresolved)")
			} else {
				names = append(names, m+" (unresolved)")
			}
		}
		slices.Sort(names)
		out[g.Get("cn")] = names
	}
	return out
}

func TestSambaServerSideNesting(t *testing.T) {
	s := adSamba(t)
	cfg := adConfig(s)
	cfg.Groups.Nested = ldap.NestedServer
	groups := membersByName(t, read(t, cfg, nil))
	want := map[string][]string{
		"G1": {"alice", "bob", "carol", "jmueller"}, // eve is a member but outside the user scope
		"G2": {"bob", "carol", "jmueller"},
		"G3": {"carol", "jmueller"},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, groups[name]); diff != "" {
			t.Errorf("in-chain members of %s (-want +got):\n%s", name, diff)
		}
	}
	if got := len(groups["Big"]); got != bigGroup {
		t.Errorf("Big has %d in-chain members, want %d", got, bigGroup)
	}
}

func TestSambaTLSAndBinds(t *testing.T) {
	s := adSamba(t)
	keytab := filepath.Join(t.TempDir(), "reader.keytab")
	s.Tool(t, "domain", "exportkeytab", keytab, "--principal=scimreader@"+ldaptest.SambaRealm)
	tests := []struct {
		name    string
		mod     func(*ldap.Config)
		wantErr string
	}{
		{name: "starttls", mod: func(c *ldap.Config) {}},
		{name: "ldaps", mod: func(c *ldap.Config) { c.URL, c.StartTLS = s.LDAPSURL, false }},
		{name: "ldaps by host name", mod: func(c *ldap.Config) {
			c.URL, c.StartTLS, c.TLS.ServerName = s.LDAPSURL, false, ldaptest.SambaHost
		}},
		{name: "ldaps wrong CA", mod: func(c *ldap.Config) {
			c.URL, c.StartTLS, c.TLS.CAFile = s.LDAPSURL, false, s.WrongCAFile
		}, wantErr: "certificate signed by unknown authority"},
		{name: "starttls wrong CA", mod: func(c *ldap.Config) { c.TLS.CAFile = s.WrongCAFile }, wantErr: "certificate signed by unknown authority"},
		{name: "service account by DN", mod: func(c *ldap.Config) {
			c.BindDN, c.BindPassword = "CN=scimreader,OU=Service,"+ldaptest.SambaBaseDN, "Reader-Passw0rd!x"
		}},
		{name: "kerberos keytab", mod: func(c *ldap.Config) {
			c.BindDN, c.BindPassword = "", ""
			c.Kerberos = &ldap.KerberosConfig{Username: "scimreader", Realm: ldaptest.SambaRealm, Keytab: keytab,
				Krb5Conf: s.Krb5Conf, ServicePrincipal: "ldap/" + ldaptest.SambaHost}
		}},
		{name: "kerberos wrong keytab", mod: func(c *ldap.Config) {
			c.BindDN, c.BindPassword = "", ""
			c.Kerberos = &ldap.KerberosConfig{Username: "alice", Realm: ldaptest.SambaRealm, Keytab: keytab,
				Krb5Conf: s.Krb5Conf, ServicePrincipal: "ldap/" + ldaptest.SambaHost}
		}, wantErr: "gssapi bind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := adConfig(s)
			cfg.Users.BaseDN = "OU=Staff," + ldaptest.SambaBaseDN
			cfg.Users.Filter = "(&(objectCategory=person)(objectClass=user)(!(sAMAccountName=bulk*)))"
			tt.mod(&cfg)
			src, err := cfg.Open(nil)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer src.Close()
			dir, err := src.Read(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Read error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if len(dir.Users) != 4 {
				t.Errorf("got %d users, want 4", len(dir.Users))
			}
		})
	}
}

func TestSambaCheckAndDomainRoot(t *testing.T) {
	s := adSamba(t)
	cfg := adConfig(s)
	// From the domain root: continuation references (referrals) are skipped, not followed.
	cfg.Users.BaseDN = ldaptest.SambaBaseDN
	cfg.Users.Filter = "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName=alice)(sAMAccountName=eve)))"
	src, err := cfg.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := src.(connectors.Checker).Check(context.Background())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !strings.HasPrefix(rep.Details["vendor"], "Active Directory") || rep.Details["users"] != "2" ||
		rep.Details["defaultNamingContext"] != ldaptest.SambaBaseDN {
		t.Errorf("Check = %+v", rep)
	}
}

// TestSambaLDIFExport reads an ldapsearch export of the AD (objectGUID arrives base64) and
// expects the same ids and memberships as the live read.
func TestSambaLDIFExport(t *testing.T) {
	s := adSamba(t)
	cfg := adConfig(s)
	live := read(t, cfg, nil)
	out, err := exec.Command("ldapsearch", "-x", "-H", s.URL, "-D", ldaptest.SambaAdmin, "-w", ldaptest.SambaPassword,
		"-b", ldaptest.SambaBaseDN, "-E", "pr=1000/noprompt", "(|(objectClass=user)(objectClass=group))").CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "objectGUID:: ") {
		t.Fatalf("export has no base64 objectGUID")
	}
	file := filepath.Join(t.TempDir(), "ad.ldif")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	offline := read(t, ldap.Config{FlavourName: ldap.FlavourActiveDirectory, LDIFFile: file, Users: cfg.Users, Groups: cfg.Groups}, nil)
	sortDir(live)
	sortDir(offline)
	ids := func(es []connectors.Entry) (out []string) {
		for _, e := range es {
			out = append(out, e.ID+" "+e.Get(ldap.DisabledAttribute)+" "+strings.Join(e.Members, "|"))
		}
		return out
	}
	if diff := cmp.Diff(ids(live.Users), ids(offline.Users)); diff != "" {
		t.Errorf("users (-live +ldif):\n%s", diff)
	}
	if diff := cmp.Diff(ids(live.Groups), ids(offline.Groups)); diff != "" {
		t.Errorf("groups (-live +ldif):\n%s", diff)
	}
}
