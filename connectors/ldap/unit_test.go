package ldap_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors/ldap"
)

func TestGUIDAndSID(t *testing.T) {
	// The example from Microsoft's documentation of the GUID structure's byte order.
	guid := []byte{0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}
	got, err := ldap.GUIDString(guid)
	if err != nil || got != "12345678-1234-5678-1234-56789abcdef0" {
		t.Errorf("GUIDString = %q, %v", got, err)
	}
	if _, err := ldap.GUIDString(guid[:15]); err == nil {
		t.Errorf("GUIDString of 15 bytes: no error")
	}
	sid := []byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0xe9, 3, 0, 0}
	if got, err := ldap.SIDString(sid); err != nil || got != "S-1-5-21-1-2-3-1001" {
		t.Errorf("SIDString = %q, %v", got, err)
	}
	if _, err := ldap.SIDString(sid[:20]); err == nil {
		t.Errorf("SIDString of a truncated SID: no error")
	}
}

func TestNormalizeDN(t *testing.T) {
	for in, want := range map[string]string{
		"CN=Jürgen Müller, OU=Staff,DC=Example,DC=test": "cn=jürgen müller,ou=staff,dc=example,dc=test",
		"uid=a\\,b,ou=people,dc=x":                      "uid=a\\,b,ou=people,dc=x",
		"CN=Smith\\, John+UID=js,DC=x":                  "cn=smith\\, john+uid=js,dc=x",
		"not a dn":                                      "not a dn",
	} {
		if got := ldap.NormalizeDN(in); got != want {
			t.Errorf("NormalizeDN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in     string
		name   string
		lo, hi int
		ok     bool
	}{
		{"member;range=0-1499", "member", 0, 1499, true},
		{"member;Range=1500-*", "member", 1500, -1, true},
		{"member", "", 0, 0, false},
		{"member;range=10-5", "", 0, 0, false},
		{"member;range=x-5", "", 0, 0, false},
	}
	for _, tt := range tests {
		name, lo, hi, ok := ldap.ParseRange(tt.in)
		if name != tt.name || lo != tt.lo || hi != tt.hi || ok != tt.ok {
			t.Errorf("parseRange(%q) = %q %d %d %v", tt.in, name, lo, hi, ok)
		}
	}
}

func TestValidate(t *testing.T) {
	good := ldap.Config{
		FlavourName: ldap.FlavourActiveDirectory, URL: "ldaps://dc.example.com",
		BindDN: "CN=svc,DC=example,DC=com", BindPassword: "hunter2-very-secret",
		Users:  ldap.UsersConfig{BaseDN: "DC=example,DC=com"},
		Groups: ldap.GroupsConfig{BaseDN: "DC=example,DC=com", Nested: ldap.NestedServer},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	bad := ldap.Config{
		FlavourName: "novell", URL: "http://x", StartTLS: true, BindPassword: "hunter2-very-secret",
		BindPasswordFile: "/x", PageSize: 5000,
		TLS:    ldap.TLSConfig{CertFile: "c.pem"},
		Users:  ldap.UsersConfig{Scope: "deep", Filter: "(broken"},
		Groups: ldap.GroupsConfig{BaseDN: "not a dn", Nested: "sideways"},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate(bad) = nil")
	}
	for _, want := range []string{
		`flavour "novell"`, "scheme must be ldap or ldaps", "tls.cert_file and tls.key_file",
		"bind_password and bind_password_file", "page_size 5000", "users.scope", "users.filter",
		"users.base_dn is required", "groups.base_dn", `groups.nested "sideways"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(fmt.Sprintf("%+v", bad), "hunter2") {
		t.Errorf("the password leaks: %v", err)
	}
	ol := good
	ol.FlavourName = ldap.FlavourOpenLDAP
	if err := ol.Validate(); err == nil || !strings.Contains(err.Error(), "needs flavour active_directory") {
		t.Errorf("nested server on openldap: %v", err)
	}
	both := good
	both.LDIFFile = "x.ldif"
	if err := both.Validate(); err == nil || !strings.Contains(err.Error(), "url and ldif_file are both set") {
		t.Errorf("url and ldif_file: %v", err)
	}
	missingPW := good
	missingPW.BindPassword = ""
	missingPW.BindPasswordFile = filepath.Join(t.TempDir(), "missing")
	if _, err := missingPW.Open(nil); err == nil || !strings.Contains(err.Error(), "bind_password_file") {
		t.Errorf("Open with a missing password file: %v", err)
	}
}

func TestFlavours(t *testing.T) {
	for _, f := range []string{ldap.FlavourActiveDirectory, ldap.FlavourOpenLDAP, ldap.FlavourGeneric} {
		fl := ldap.Config{FlavourName: f}.Flavour()
		if fl.Name != f || fl.User["userName"] == "" || fl.User["active"] == "" || fl.Group["displayName"] == "" {
			t.Errorf("flavour %s = %+v", f, fl)
		}
	}
	if !strings.Contains(ldap.ActiveDirectory.User["active"], ldap.DisabledAttribute) {
		t.Errorf("AD active does not use %s", ldap.DisabledAttribute)
	}
}

// adLDIF is a small ldifde-style export: base64 objectGUID, the full objectCategory DN,
// ldapsearch's trailer and an empty value.
const adLDIF = `version: 1

# alice, Staff
dn: CN=Alice,OU=Staff,DC=example,DC=com
objectClass: top
objectClass: user
objectCategory: CN=Person,CN=Schema,CN=Configuration,DC=example,DC=com
sAMAccountName: alice
userAccountControl: 512
objectGUID:: eFY0EjQSeFYSNFZ4mrze8A==
description:

dn: CN=Bob,OU=Staff,DC=example,DC=com
objectClass: user
objectCategory: CN=Person,CN=Schema,CN=Configuration,DC=example,DC=com
sAMAccountName: bob
userAccountControl: 514
objectGUID:: AAAAAAAAAAAAAAAAAAAAAQ==

dn: CN=Printer,OU=Staff,DC=example,DC=com
objectClass: computer
objectClass: user
objectCategory: CN=Computer,CN=Schema,CN=Configuration,DC=example,DC=com
sAMAccountName: printer$
objectGUID:: AAAAAAAAAAAAAAAAAAAAAg==

dn: CN=Eve,OU=Outside,DC=example,DC=com
objectClass: user
objectCategory: CN=Person,CN=Schema,CN=Configuration,DC=example,DC=com
sAMAccountName: eve
objectGUID:: AAAAAAAAAAAAAAAAAAAAAw==

dn: CN=Team,OU=Groups,DC=example,DC=com
objectClass: group
cn: Team
objectGUID:: AAAAAAAAAAAAAAAAAAAABA==
member: CN=Alice,OU=Staff,DC=example,DC=com
member: cn=bob, ou=staff, dc=example, dc=com

# search result
search: 4
result: 0 Success

# numResponses: 6
`

func writeLDIF(t *testing.T, s string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "export.ldif")
	if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLDIFActiveDirectory(t *testing.T) {
	cfg := ldap.Config{
		FlavourName: ldap.FlavourActiveDirectory, LDIFFile: writeLDIF(t, adLDIF),
		Users:  ldap.UsersConfig{BaseDN: "OU=Staff,DC=example,DC=com"},
		Groups: ldap.GroupsConfig{BaseDN: "DC=example,DC=com"},
	}
	dir := read(t, cfg, nil)
	var got []string
	for _, u := range dir.Users {
		got = append(got, u.Get("sAMAccountName")+" "+u.ID+" disabled="+u.Get(ldap.DisabledAttribute))
	}
	want := []string{
		"bob 00000000-0000-0000-0000-000000000001 disabled=true",
		"alice 12345678-1234-5678-1234-56789abcdef0 disabled=false",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("users (computer and OU=Outside excluded) (-want +got):\n%s", diff)
	}
	if len(dir.Groups) != 1 {
		t.Fatalf("got %d groups, want 1", len(dir.Groups))
	}
	members := slices.Clone(dir.Groups[0].Members)
	slices.Sort(members)
	if diff := cmp.Diff([]string{"cn=alice,ou=staff,dc=example,dc=com", "cn=bob,ou=staff,dc=example,dc=com"}, members); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func TestLDIFRanges(t *testing.T) {
	head := "dn: CN=Big,DC=example,DC=com\nobjectClass: group\nobjectGUID:: AAAAAAAAAAAAAAAAAAAABA==\n"
	tests := []struct {
		name    string
		attrs   string
		want    int
		wantErr error
	}{
		{"whole", "member;range=0-1: CN=a,DC=x\nmember;range=0-1: CN=b,DC=x\nmember;range=2-*: CN=c,DC=x\n", 3, nil},
		{"truncated export", "member;range=0-1: CN=a,DC=x\nmember;range=0-1: CN=b,DC=x\n", 0, ldap.ErrIncomplete},
		{"gap", "member;range=0-0: CN=a,DC=x\nmember;range=2-*: CN=c,DC=x\n", 0, ldap.ErrIncomplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ldap.Config{FlavourName: ldap.FlavourActiveDirectory, LDIFFile: writeLDIF(t, head+tt.attrs+"\n")}
			src, err := cfg.Open(nil)
			if err != nil {
				t.Fatal(err)
			}
			dir, err := src.Read(context.Background())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || dir != nil {
					t.Fatalf("Read = %v; want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(dir.Groups) != 1 || len(dir.Groups[0].Members) != tt.want {
				t.Fatalf("Read = %+v, %v; want one group of %d", dir, err, tt.want)
			}
		})
	}
}

func TestLDIFFilters(t *testing.T) {
	const data = `dn: uid=a,ou=p,dc=x
objectClass: inetOrgPerson
uid: a
cn: Anna Smith
employeeNumber: 42
userAccountControl: 514
entryUUID: 1

dn: uid=b,ou=p,dc=x
objectClass: inetOrgPerson
uid: b
cn: Ben Jones
employeeNumber: 7
userAccountControl: 512
entryUUID: 2

dn: uid=c,ou=sub,ou=p,dc=x
objectClass: inetOrgPerson
uid: c
cn: Cara Smithers
entryUUID: 3
`
	file := writeLDIF(t, data)
	tests := []struct {
		filter, base, scope string
		want                []string
	}{
		{"(objectClass=inetOrgPerson)", "ou=p,dc=x", "sub", []string{"a", "b", "c"}},
		{"(objectClass=inetOrgPerson)", "ou=p,dc=x", "one", []string{"a", "b"}},
		{"(objectClass=inetOrgPerson)", "uid=c,ou=sub,ou=p,dc=x", "base", []string{"c"}},
		{"(cn=*smith*)", "", "", []string{"a", "c"}},
		{"(cn=A*h)", "", "", []string{"a"}},
		{"(&(uid=*)(!(uid=b)))", "", "", []string{"a", "c"}},
		{"(|(uid=a)(uid=c))", "", "", []string{"a", "c"}},
		{"(employeeNumber>=10)", "", "", []string{"a"}},
		{"(employeeNumber<=10)", "", "", []string{"b"}},
		{"(userAccountControl:1.2.840.113556.1.4.803:=2)", "", "", []string{"a"}},
		{"(UID=B)", "", "", []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.filter+" "+tt.scope, func(t *testing.T) {
			cfg := ldap.Config{FlavourName: ldap.FlavourGeneric, LDIFFile: file,
				Users:  ldap.UsersConfig{BaseDN: tt.base, Scope: tt.scope, Filter: tt.filter},
				Groups: ldap.GroupsConfig{Filter: "(objectClass=groupOfNames)"}}
			var got []string
			for _, u := range read(t, cfg, nil).Users {
				got = append(got, u.Get("uid"))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	cfg := ldap.Config{FlavourName: ldap.FlavourActiveDirectory, LDIFFile: file,
		Users: ldap.UsersConfig{Filter: "(memberOf:1.2.840.113556.1.4.1941:=cn=g,dc=x)"}}
	src, err := cfg.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Read(context.Background()); !errors.Is(err, ldap.ErrUnsupportedFilter) {
		t.Errorf("in-chain filter offline: %v, want ErrUnsupportedFilter", err)
	}
	noID := ldap.Config{FlavourName: ldap.FlavourActiveDirectory, LDIFFile: file, Users: ldap.UsersConfig{Filter: "(uid=a)"}}
	src, _ = noID.Open(nil)
	if _, err := src.Read(context.Background()); !errors.Is(err, ldap.ErrNoID) {
		t.Errorf("user without objectGUID: %v, want ErrNoID", err)
	}
}
