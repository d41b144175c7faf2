package ldap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ldaptest.StopSamba()
	os.Exit(code)
}

// olFixture is the OpenLDAP test directory: all three group shapes, a nesting cycle, a user
// outside ou=people, a manager reference and non-ASCII names.
const olFixture = `dn: uid=alice,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: alice
cn: Alice Archer
sn: Archer
givenName: Alice
mail: alice@example.test
title: Engineer

dn: uid=bob,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: bob
cn: Bob Baker
sn: Baker
givenName: Bob
mail: bob@example.test
manager: uid=alice,ou=people,dc=example,dc=test

dn: uid=carol,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: carol
cn:: Wm/DqyDDhW5nc3Ryw7Zt
sn:: w4VuZ3N0csO2bQ==
givenName:: Wm/Dqw==
mail: carol@example.test

dn: uid=dave,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: dave
cn: Dave Dunn
sn: Dunn
givenName: Dave

dn: ou=contractors,dc=example,dc=test
objectClass: organizationalUnit
ou: contractors

dn: uid=eve,ou=contractors,dc=example,dc=test
objectClass: inetOrgPerson
uid: eve
cn: Eve Outside
sn: Outside

dn: cn=platform,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: platform
member: uid=bob,ou=people,dc=example,dc=test

dn: cn=eng,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: eng
member: uid=alice,ou=people,dc=example,dc=test
member: cn=platform,ou=groups,dc=example,dc=test

dn: cn=ops,ou=groups,dc=example,dc=test
objectClass: groupOfUniqueNames
cn: ops
uniqueMember: uid=carol,ou=people,dc=example,dc=test
uniqueMember: uid=dave,ou=people,dc=example,dc=test#'0101'B

dn: cn=posix,ou=groups,dc=example,dc=test
objectClass: posixGroup
cn: posix
gidNumber: 5000
memberUid: alice
memberUid: dave

`

// olCycle closes the cycle eng -> platform -> eng once both exist.
const olCycle = `dn: cn=platform,ou=groups,dc=example,dc=test
changetype: modify
add: member
member: cn=eng,ou=groups,dc=example,dc=test
`

func startFixtureSlapd(t testing.TB) *ldaptest.Slapd {
	t.Helper()
	s := ldaptest.StartSlapd(t, ldaptest.SlapdOptions{})
	s.Add(olFixture)
	cmd := exec.Command("ldapmodify", "-x", "-H", s.URL, "-D", ldaptest.SlapdRootDN, "-w", ldaptest.SlapdRootPW)
	cmd.Stdin = strings.NewReader(olCycle)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapmodify: %v\n%s", err, out)
	}
	return s
}

func olConfig(s *ldaptest.Slapd) ldap.Config {
	return ldap.Config{
		FlavourName:  ldap.FlavourOpenLDAP,
		URL:          s.URL,
		StartTLS:     true,
		TLS:          ldap.TLSConfig{CAFile: s.PKI.CAFile},
		BindDN:       ldaptest.SlapdReaderDN,
		BindPassword: ldaptest.SlapdReaderPW,
		Users:        ldap.UsersConfig{BaseDN: "ou=people," + ldaptest.SlapdSuffix},
		Groups:       ldap.GroupsConfig{BaseDN: "ou=groups," + ldaptest.SlapdSuffix},
	}
}

func read(t *testing.T, cfg ldap.Config, logger *slog.Logger) *connectors.Directory {
	t.Helper()
	src, err := cfg.Open(logger)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer src.Close()
	dir, err := src.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return dir
}

func byKey(entries []connectors.Entry, key string) (connectors.Entry, bool) {
	for _, e := range entries {
		if slices.Contains(e.Keys, key) {
			return e, true
		}
	}
	return connectors.Entry{}, false
}

// entryUUIDs asks ldapsearch for the entryUUID of every entry under base, keyed by lower-case DN.
func entryUUIDs(t *testing.T, s *ldaptest.Slapd) map[string]string {
	t.Helper()
	out, err := exec.Command("ldapsearch", "-LLL", "-x", "-o", "ldif-wrap=no", "-H", s.URL, "-D", ldaptest.SlapdRootDN,
		"-w", ldaptest.SlapdRootPW, "-b", ldaptest.SlapdSuffix, "(objectClass=*)", "entryUUID").CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	ids := map[string]string{}
	var dn string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "dn: "); ok {
			dn = strings.ToLower(v)
		}
		if v, ok := strings.CutPrefix(line, "entryUUID: "); ok {
			ids[dn] = v
		}
	}
	return ids
}

func TestOpenLDAPRead(t *testing.T) {
	s := startFixtureSlapd(t)
	dir := read(t, olConfig(s), nil)

	var users []string
	for _, u := range dir.Users {
		users = append(users, u.Get("uid"))
	}
	slices.Sort(users)
	if diff := cmp.Diff([]string{"alice", "bob", "carol", "dave"}, users); diff != "" {
		t.Errorf("users (eve is outside ou=people) (-want +got):\n%s", diff)
	}
	ids := entryUUIDs(t, s)
	for _, u := range dir.Users {
		dn := "uid=" + u.Get("uid") + ",ou=people,dc=example,dc=test"
		if u.ID != ids[dn] || u.ID == "" {
			t.Errorf("user %s: ID %q, want entryUUID %q", dn, u.ID, ids[dn])
		}
		if !slices.Contains(u.Keys, dn) || !slices.Contains(u.Keys, u.Get("uid")) {
			t.Errorf("user %s: keys %q lack the DN or uid", dn, u.Keys)
		}
	}
	carol, _ := byKey(dir.Users, "carol")
	if got := carol.Get("cn"); got != "Zoë Ångström" {
		t.Errorf("carol's cn = %q, want the non-ASCII Zoë Ångström", got)
	}
	bob, _ := byKey(dir.Users, "bob")
	if _, ok := byKey(dir.Users, bob.Get("manager")); !ok {
		t.Errorf("bob's manager %q resolves to no user key", bob.Get("manager"))
	}

	members := map[string][]string{}
	for _, g := range dir.Groups {
		m := slices.Clone(g.Members)
		slices.Sort(m)
		members[g.Get("cn")] = m
		if g.ID != ids["cn="+g.Get("cn")+",ou=groups,dc=example,dc=test"] {
			t.Errorf("group %s: ID %q is not its entryUUID", g.Get("cn"), g.ID)
		}
	}
	want := map[string][]string{
		"eng":      {"cn=platform,ou=groups,dc=example,dc=test", "uid=alice,ou=people,dc=example,dc=test"},
		"platform": {"cn=eng,ou=groups,dc=example,dc=test", "uid=bob,ou=people,dc=example,dc=test"},
		"ops":      {"uid=carol,ou=people,dc=example,dc=test", "uid=dave,ou=people,dc=example,dc=test"},
		"posix":    {"alice", "dave"},
	}
	if diff := cmp.Diff(want, members); diff != "" {
		t.Errorf("group members (-want +got):\n%s", diff)
	}
	// Every member reference resolves to a user or a group through its keys.
	for _, g := range dir.Groups {
		for _, m := range g.Members {
			_, u := byKey(dir.Users, m)
			_, gr := byKey(dir.Groups, m)
			if !u && !gr {
				t.Errorf("group %s: member %q resolves to nothing", g.Get("cn"), m)
			}
		}
	}
	// The memberof overlay saw the ldapadd load.
	withMemberOf := read(t, withAttrs(olConfig(s), "memberOf"), nil)
	a, _ := byKey(withMemberOf.Users, "alice")
	if diff := cmp.Diff([]string{"cn=eng,ou=groups,dc=example,dc=test"}, a.Values("memberOf")); diff != "" {
		t.Errorf("alice's memberOf (the overlay tracks groupOfNames) (-want +got):\n%s", diff)
	}
}

// TestOpenLDAPDecodersAgree reads the fixture with the raw decoder and with go-ldap.
func TestOpenLDAPDecodersAgree(t *testing.T) {
	s := startFixtureSlapd(t)
	raw := read(t, olConfig(s), nil)
	src, err := olConfig(s).Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ldap.UseGoLDAPOnly(src)
	viaGoLDAP, err := src.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(viaGoLDAP, raw); diff != "" {
		t.Errorf("raw decoder vs go-ldap (-go-ldap +raw):\n%s", diff)
	}
}

func withAttrs(cfg ldap.Config, attrs ...string) ldap.Config {
	cfg.Users.Attributes = attrs
	return cfg
}

func TestOpenLDAPTLS(t *testing.T) {
	s := ldaptest.StartSlapd(t, ldaptest.SlapdOptions{})
	s.Add(olFixture)
	tests := []struct {
		name    string
		mod     func(*ldap.Config)
		wantErr string
		wantLog string
	}{
		{name: "starttls", mod: func(c *ldap.Config) {}},
		{name: "ldaps", mod: func(c *ldap.Config) { c.URL, c.StartTLS = s.LDAPSURL, false }},
		{name: "ldaps with client certificate", mod: func(c *ldap.Config) {
			c.URL, c.StartTLS = s.LDAPSURL, false
			c.TLS.CertFile, c.TLS.KeyFile = s.PKI.ClientCertFile, s.PKI.ClientKeyFile
		}},
		{name: "ldaps wrong CA", mod: func(c *ldap.Config) {
			c.URL, c.StartTLS, c.TLS.CAFile = s.LDAPSURL, false, s.WrongCAFile
		}, wantErr: "certificate signed by unknown authority"},
		{name: "starttls wrong CA", mod: func(c *ldap.Config) { c.TLS.CAFile = s.WrongCAFile }, wantErr: "certificate signed by unknown authority"},
		{name: "system roots reject the test CA", mod: func(c *ldap.Config) { c.TLS.CAFile = "" }, wantErr: "certificate"},
		{name: "server name mismatch", mod: func(c *ldap.Config) { c.TLS.ServerName = "other.example.test" }, wantErr: "other.example.test"},
		{name: "insecure skip verify warns", mod: func(c *ldap.Config) {
			c.TLS.CAFile, c.TLS.InsecureSkipVerify = s.WrongCAFile, true
		}, wantLog: "verification is OFF"},
		{name: "plain ldap warns", mod: func(c *ldap.Config) { c.StartTLS = false }, wantLog: "unencrypted"},
		{name: "wrong password", mod: func(c *ldap.Config) { c.BindPassword = "nope-not-it" }, wantErr: "Invalid Credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := olConfig(s)
			tt.mod(&cfg)
			var logs bytes.Buffer
			src, err := cfg.Open(slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer src.Close()
			dir, err := src.Read(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || dir != nil {
					t.Fatalf("Read = %v, %v; want no directory and an error containing %q", dir, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), ldaptest.SlapdReaderPW) || strings.Contains(err.Error(), "nope-not-it") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if len(dir.Users) != 4 {
				t.Errorf("got %d users, want 4", len(dir.Users))
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q lacks %q", logs.String(), tt.wantLog)
			}
			if strings.Contains(logs.String(), ldaptest.SlapdReaderPW) {
				t.Errorf("log leaks the password: %s", logs.String())
			}
		})
	}
}

// manyUsers returns n inetOrgPerson entries under ou=people.
func manyUsers(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "dn: uid=u%05d,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: u%05d\ncn: User %d\nsn: U%d\nmail: u%05d@example.test\n\n", i, i, i, i, i)
	}
	return b.String()
}

func TestOpenLDAPSizeLimit(t *testing.T) {
	trap := ldaptest.StartSlapd(t, ldaptest.SlapdOptions{SizeLimitTrap: true, LDIF: manyUsers(700)})
	fixed := ldaptest.StartSlapd(t, ldaptest.SlapdOptions{LDIF: manyUsers(700)})

	cfg := olConfig(trap)
	cfg.PageSize = 100
	src, err := cfg.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dir, err := src.Read(context.Background())
	var lerr *goldap.Error
	if !errors.As(err, &lerr) || lerr.ResultCode != goldap.LDAPResultSizeLimitExceeded || dir != nil {
		t.Fatalf("Read over the size limit = %v, %v; want no directory and size limit exceeded", dir, err)
	}

	root := cfg
	root.BindDN, root.BindPassword = ldaptest.SlapdRootDN, ldaptest.SlapdRootPW
	if got := len(read(t, root, nil).Users); got != 700 {
		t.Errorf("root bind read %d users, want 700 (the root DN is not limited)", got)
	}
	cfg = olConfig(fixed)
	cfg.PageSize = 100
	if got := len(read(t, cfg, nil).Users); got != 700 {
		t.Errorf("with size.prtotal=unlimited the reader read %d users, want 700", got)
	}
}

func TestOpenLDAPPartialReads(t *testing.T) {
	s := ldaptest.StartSlapd(t, ldaptest.SlapdOptions{LDIF: manyUsers(1200)})
	for _, decoder := range []string{"raw", "go-ldap"} {
		t.Run(decoder, func(t *testing.T) { testPartialReads(t, s, decoder == "go-ldap") })
	}
}

func testPartialReads(t *testing.T, s *ldaptest.Slapd, goLDAP bool) {
	cfg := olConfig(s)
	cfg.PageSize = 100
	cfg.RequestTimeout = 2 * time.Second
	open := func(t *testing.T) connectors.Source {
		t.Helper()
		src, err := cfg.Open(nil)
		if err != nil {
			t.Fatal(err)
		}
		if goLDAP {
			ldap.UseGoLDAPOnly(src)
		}
		return src
	}

	t.Run("dropped connection then redial", func(t *testing.T) {
		src := open(t)
		defer src.Close()
		ldap.SetAfterPage(src, func(what string, page int) {
			if what == "users" && page == 3 {
				s.Stop()
			}
		})
		dir, err := src.Read(context.Background())
		if err == nil || dir != nil {
			t.Fatalf("Read with slapd killed after page 3 = %d users, %v; want an error and no directory", len(dir.Users), err)
		}
		t.Logf("dropped connection: %v", err)
		s.Start()
		ldap.SetAfterPage(src, nil)
		dir, err = src.Read(context.Background())
		if err != nil {
			t.Fatalf("Read after slapd came back (redial): %v", err)
		}
		if len(dir.Users) != 1200 {
			t.Errorf("got %d users after redial, want 1200", len(dir.Users))
		}
	})

	t.Run("server stops answering: request timeout", func(t *testing.T) {
		src := open(t)
		defer src.Close()
		pid := slapdPID(t, s)
		ldap.SetAfterPage(src, func(what string, page int) {
			if what == "users" && page == 2 {
				_ = syscall.Kill(pid, syscall.SIGSTOP)
			}
		})
		defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
		start := time.Now()
		dir, err := src.Read(context.Background())
		if err == nil || dir != nil {
			t.Fatalf("Read against a stopped slapd = %v; want a timeout error", err)
		}
		t.Logf("timeout after %v: %v", time.Since(start).Round(time.Millisecond), err)
	})

	t.Run("cancelled context", func(t *testing.T) {
		src := open(t)
		defer src.Close()
		ctx, cancel := context.WithCancel(context.Background())
		ldap.SetAfterPage(src, func(what string, page int) {
			if page == 2 {
				cancel()
			}
		})
		dir, err := src.Read(ctx)
		if !errors.Is(err, context.Canceled) || dir != nil {
			t.Fatalf("Read with a cancelled context = %v; want context.Canceled", err)
		}
	})
}

func slapdPID(t *testing.T, s *ldaptest.Slapd) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, "slapd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestOpenLDAPCheck(t *testing.T) {
	s := startFixtureSlapd(t)
	src, err := olConfig(s).Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := src.(connectors.Checker).Check(context.Background())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if rep.Identity != ldaptest.SlapdReaderDN || rep.Details["users"] != "4" || rep.Details["groups"] != "4" ||
		!regexp.MustCompile(`^TLS 1\.[23]$`).MatchString(rep.Details["tls"]) {
		t.Errorf("Check = %+v", rep)
	}
}

// TestLDIFMatchesServer exports the fixture with ldapsearch and checks that the LDIF source
// reads exactly what the server source reads.
func TestLDIFMatchesServer(t *testing.T) {
	s := startFixtureSlapd(t)
	cfg := olConfig(s)
	want := read(t, cfg, nil)

	out, err := exec.Command("ldapsearch", "-x", "-H", s.URL, "-D", ldaptest.SlapdRootDN, "-w", ldaptest.SlapdRootPW,
		"-b", ldaptest.SlapdSuffix, "-E", "pr=1000/noprompt", "(objectClass=*)", "*", "entryUUID").CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "export.ldif")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	lcfg := ldap.Config{FlavourName: ldap.FlavourOpenLDAP, LDIFFile: file, Users: cfg.Users, Groups: cfg.Groups}
	got := read(t, lcfg, nil)
	sortDir(want)
	sortDir(got)
	// The export holds every attribute; compare what the server source asked for.
	for i := range got.Users {
		got.Users[i].Attributes = pick(got.Users[i].Attributes, want.Users[i].Attributes)
	}
	for i := range got.Groups {
		got.Groups[i].Attributes = pick(got.Groups[i].Attributes, want.Groups[i].Attributes)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LDIF source vs server source (-server +ldif):\n%s", diff)
	}
}

func pick(have, like map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k := range like {
		out[k] = connectors.Entry{Attributes: have}.Values(k)
	}
	return out
}

func sortDir(d *connectors.Directory) {
	for _, es := range [][]connectors.Entry{d.Users, d.Groups} {
		slices.SortFunc(es, func(a, b connectors.Entry) int { return strings.Compare(a.ID, b.ID) })
		for i := range es {
			slices.Sort(es[i].Members)
		}
	}
}
