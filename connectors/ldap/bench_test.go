package ldap_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

// benchDirectory returns n users and g groupOfNames groups of ten members each.
func benchDirectory(n, g int) string {
	var b strings.Builder
	b.WriteString(manyUsers(n))
	for i := range g {
		fmt.Fprintf(&b, "dn: cn=g%04d,ou=groups,dc=example,dc=test\nobjectClass: groupOfNames\ncn: g%04d\ndescription: group %d\n", i, i, i)
		for j := range 10 {
			fmt.Fprintf(&b, "member: uid=u%05d,ou=people,dc=example,dc=test\n", (i*10+j)%n)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// BenchmarkRead20k reads 20,000 users and 2,000 groups from a local slapd with the connector
// and, side by side in the same iteration, with `ldapsearch -E pr=1000/noprompt` fetching the
// same entries and attributes (output to /dev/null). It reports both wall times and their ratio
// (target: connector/ldapsearch <= 1.5). Run it with
//
//	go test -run '^$' -bench Read20k -benchtime 3x ./connectors/ldap/
func BenchmarkRead20k(b *testing.B) {
	const users, groups = 20000, 2000
	s := ldaptest.StartSlapd(b, ldaptest.SlapdOptions{LDIF: benchDirectory(users, groups)})
	cfg := ldap.Config{
		FlavourName:  ldap.FlavourOpenLDAP,
		URL:          s.URL,
		BindDN:       ldaptest.SlapdReaderDN,
		BindPassword: ldaptest.SlapdReaderPW,
		Users:        ldap.UsersConfig{BaseDN: "ou=people," + ldaptest.SlapdSuffix},
		Groups:       ldap.GroupsConfig{BaseDN: "ou=groups," + ldaptest.SlapdSuffix},
	}
	// The attributes the connector asks for with the openldap flavour's defaults.
	userAttrs := []string{"uid", "mail", "givenName", "sn", "cn", "displayName", "title", "telephoneNumber",
		"employeeNumber", "departmentNumber", "o", "manager", "entryUUID"}
	groupAttrs := []string{"cn", "description", "gidNumber", "entryUUID", "memberUid", "member", "uniqueMember"}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	ldapsearch := func(base, filter string, attrs []string) {
		args := append([]string{"-x", "-LLL", "-H", s.URL, "-D", ldaptest.SlapdReaderDN, "-w", ldaptest.SlapdReaderPW,
			"-b", base, "-E", "pr=1000/noprompt", filter}, attrs...)
		cmd := exec.Command("ldapsearch", args...)
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = devnull, &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("ldapsearch: %v\n%s", err, stderr.String())
		}
	}
	src, err := cfg.Open(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()

	var conn, tool time.Duration
	for b.Loop() {
		start := time.Now()
		dir, err := src.Read(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		conn += time.Since(start)
		if len(dir.Users) != users || len(dir.Groups) != groups {
			b.Fatalf("read %d users, %d groups", len(dir.Users), len(dir.Groups))
		}
		start = time.Now()
		ldapsearch("ou=people,"+ldaptest.SlapdSuffix, "(objectClass=inetOrgPerson)", userAttrs)
		ldapsearch("ou=groups,"+ldaptest.SlapdSuffix,
			"(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))", groupAttrs)
		tool += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(conn.Milliseconds())/n, "connector-ms/read")
	b.ReportMetric(float64(tool.Milliseconds())/n, "ldapsearch-ms/read")
	b.ReportMetric(float64(conn)/float64(tool), "ratio")
	b.Logf("%d users + %d groups: connector %v/read, ldapsearch -E pr=1000/noprompt %v/read, ratio %.2f",
		users, groups, (conn / time.Duration(b.N)).Round(time.Millisecond),
		(tool / time.Duration(b.N)).Round(time.Millisecond), float64(conn)/float64(tool))
}
