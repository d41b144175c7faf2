package ldaptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Slapd fixture constants.
const (
	SlapdSuffix = "dc=example,dc=test"
	SlapdRootDN = "cn=admin,dc=example,dc=test"
	SlapdRootPW = "admin-secret"
	// SlapdReaderDN is a non-root account that may read everything; the size limits apply to it.
	SlapdReaderDN = "cn=reader,dc=example,dc=test"
	SlapdReaderPW = "reader-secret"
)

// SlapdOptions configure a test slapd.
type SlapdOptions struct {
	// SizeLimitTrap keeps slapd's default size limit (500) for paged searches by non-root
	// binds, as a stock configuration does; otherwise size.prtotal is unlimited.
	SizeLimitTrap bool
	// NoSyncprov leaves the syncprov overlay out, as on a server that serves no syncrepl.
	NoSyncprov bool
	// LDIF, when set, is loaded offline with slapadd before slapd starts (fast, but the
	// memberof overlay does not see it). Use Add for data that needs memberOf.
	LDIF string
}

// Slapd is a running OpenLDAP server on loopback ports, with TLS from a test CA.
type Slapd struct {
	// URL is ldap://127.0.0.1:port (StartTLS available); LDAPSURL is ldaps://127.0.0.1:port.
	URL, LDAPSURL string
	// PKI holds the test CA and certificates; WrongCAFile is a CA that did not sign the server.
	PKI         *PKI
	WrongCAFile string
	// Dir holds the configuration and the database.
	Dir string

	conf string
	cmd  *exec.Cmd
	tb   testing.TB
}

// StartSlapd starts slapd from a generated slapd.conf (back_mdb; memberof, refint and syncprov
// overlays, the last with a session log, so that syncrepl consumers resuming from a recent cookie
// get deletions as a list instead of a present phase) and stops it when the test ends. The base entries (suffix, ou=people, ou=groups, the reader
// account) are loaded.
func StartSlapd(tb testing.TB, opts SlapdOptions) *Slapd {
	tb.Helper()
	Require(tb, map[string]string{"slapd": "slapd", "ldapadd": "ldap-utils", "slapadd": "slapd"})
	dir := tb.TempDir()
	pki, err := NewPKI(dir, "slapd", "127.0.0.1", "localhost")
	if err != nil {
		tb.Fatal(err)
	}
	wrong, err := NewPKI(dir, "wrong", "127.0.0.1")
	if err != nil {
		tb.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	tlsPort, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Slapd{
		URL:         "ldap://127.0.0.1:" + strconv.Itoa(port),
		LDAPSURL:    "ldaps://127.0.0.1:" + strconv.Itoa(tlsPort),
		PKI:         pki,
		WrongCAFile: wrong.CAFile,
		Dir:         dir,
		conf:        filepath.Join(dir, "slapd.conf"),
		tb:          tb,
	}
	limit := "sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited"
	syncprov := "overlay syncprov\nsyncprov-checkpoint 100 1\nsyncprov-sessionlog 10000\n"
	if opts.NoSyncprov {
		syncprov = ""
	}
	if opts.SizeLimitTrap {
		limit = "sizelimit 500"
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
moduleload syncprov
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
TLSCACertificateFile %[2]s
TLSCertificateFile %[3]s
TLSCertificateKeyFile %[4]s
%[5]s
database mdb
maxsize 2147483648
suffix "%[6]s"
rootdn "%[7]s"
rootpw %[8]s
directory %[1]s/data
index objectClass eq
index uid,memberUid eq
index entryUUID,entryCSN eq
overlay memberof
memberof-refint true
overlay refint
refint_attributes member uniqueMember
%[9]saccess to attrs=userPassword by anonymous auth by * none
access to * by * read
`, dir, pki.CAFile, pki.CertFile, pki.KeyFile, limit, SlapdSuffix, SlapdRootDN, SlapdRootPW, syncprov)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	base := fmt.Sprintf(`dn: %[1]s
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,%[1]s
objectClass: organizationalUnit
ou: people

dn: ou=groups,%[1]s
objectClass: organizationalUnit
ou: groups

dn: %[2]s
objectClass: simpleSecurityObject
objectClass: organizationalRole
cn: reader
userPassword: %[3]s

`, SlapdSuffix, SlapdReaderDN, SlapdReaderPW)
	s.slapadd(base + opts.LDIF)
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

func (s *Slapd) slapadd(ldif string) {
	s.tb.Helper()
	cmd := exec.Command("slapadd", "-f", s.conf, "-q")
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.tb.Fatalf("ldaptest: slapadd: %v\n%s", err, out)
	}
}

// Start starts (or restarts, on the same ports and data) slapd and waits until it accepts
// connections.
func (s *Slapd) Start() {
	s.tb.Helper()
	bin, _ := lookPath("slapd")
	cmd := exec.Command(bin, "-f", s.conf, "-h", s.URL+"/ "+s.LDAPSURL+"/", "-d", "0")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("ldaptest: start slapd: %v", err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	addr := strings.TrimPrefix(s.URL, "ldap://")
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		select {
		case err := <-exited:
			s.cmd = nil
			s.tb.Fatalf("ldaptest: slapd exited: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.tb.Fatalf("ldaptest: slapd did not listen on %s within 15s\n%s", addr, logs.String())
		}
	}
	go func() { <-exited }()
}

// Stop kills slapd (the whole process group) if it runs.
func (s *Slapd) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	// Wait until the port is free again, so that a restart can bind it.
	addr := strings.TrimPrefix(s.URL, "ldap://")
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		_ = c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	s.cmd = nil
}

// Add loads LDIF with ldapadd as the root DN, so that the memberof overlay sees it.
func (s *Slapd) Add(ldif string) {
	s.tb.Helper()
	cmd := exec.Command("ldapadd", "-x", "-H", s.URL, "-D", SlapdRootDN, "-w", SlapdRootPW)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.tb.Fatalf("ldaptest: ldapadd: %v\n%s", err, out)
	}
}
