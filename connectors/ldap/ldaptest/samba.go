package ldaptest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Samba fixture constants.
const (
	SambaRealm    = "EXAMPLE.TEST"
	SambaDomain   = "EXAMPLE"
	SambaBaseDN   = "DC=example,DC=test"
	SambaHost     = "dc1.example.test"
	SambaAdmin    = "Administrator@EXAMPLE.TEST"
	SambaPassword = "Passw0rd!Scim-Test"
	// SambaPIDFile guards against a Samba left running by a test binary that died: the next
	// start kills the process group it names.
	SambaPIDFile = "/tmp/scimbridge-ldaptest-samba.pid"
)

// Samba is a running Samba AD DC on 127.0.0.1 (ports 389, 636 and 88: Samba cannot move them).
type Samba struct {
	// URL is ldap://127.0.0.1 (StartTLS available); LDAPSURL is ldaps://127.0.0.1.
	URL, LDAPSURL string
	// PKI holds the test CA Samba's certificate comes from; WrongCAFile is an unrelated CA.
	PKI         *PKI
	WrongCAFile string
	// Dir is the provisioning target directory; Conf its smb.conf; Krb5Conf a krb5.conf for
	// the realm with the KDC on 127.0.0.1.
	Dir, Conf, Krb5Conf string
	// ProvisionTime and StartTime say how long provisioning and starting took.
	ProvisionTime, StartTime time.Duration

	cmd  *exec.Cmd
	conf []byte // smb.conf as provisioned
}

var (
	sambaOnce sync.Once
	sambaInst *Samba
	sambaErr  error
	sambaMu   sync.Mutex
)

// SharedSamba provisions and starts one Samba AD DC for the whole test binary, on first use.
// Call StopSamba from TestMain after m.Run. Missing packages skip (fail under CI=true).
func SharedSamba(tb testing.TB) *Samba {
	tb.Helper()
	Require(tb, map[string]string{
		"samba":      "samba-ad-dc",
		"samba-tool": "samba-ad-dc samba-ad-provision samba-dsdb-modules",
		"ldapsearch": "ldap-utils",
	})
	if _, err := os.Stat("/usr/share/samba/setup/provision.ldif"); err != nil {
		Missing(tb, "ldaptest: samba's provisioning data is missing: install the Debian package samba-ad-provision")
	}
	if os.Geteuid() != 0 {
		Missing(tb, "ldaptest: Samba AD DC must run as root (it binds ports 389, 636 and 88)")
	}
	sambaOnce.Do(func() { sambaInst, sambaErr = startSamba() })
	if sambaErr != nil {
		tb.Fatalf("ldaptest: samba: %v", sambaErr)
	}
	return sambaInst
}

// StopSamba kills the shared Samba, if one was started, and removes its directory.
func StopSamba() {
	sambaMu.Lock()
	defer sambaMu.Unlock()
	if sambaInst == nil || sambaInst.cmd == nil {
		return
	}
	killGroup(sambaInst.cmd.Process.Pid)
	_ = os.Remove(SambaPIDFile)
	_ = os.RemoveAll(sambaInst.Dir)
	sambaInst.cmd = nil
}

func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for i := 0; i < 50; i++ {
		if syscall.Kill(-pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// killStale kills a Samba left behind by an earlier run, as named by the pidfile.
func killStale() {
	b, err := os.ReadFile(SambaPIDFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && pid > 1 {
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && bytes.Contains(cmdline, []byte("samba")) {
			killGroup(pid)
		}
	}
	_ = os.Remove(SambaPIDFile)
}

func startSamba() (*Samba, error) {
	killStale()
	for _, port := range []string{"389", "636", "88"} {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			return nil, fmt.Errorf("port %s is taken (another LDAP server or Samba?); Samba AD cannot move it: %w", port, err)
		}
		_ = l.Close()
	}
	dir, err := os.MkdirTemp("", "scimbridge-samba-")
	if err != nil {
		return nil, err
	}
	s := &Samba{
		URL: "ldap://127.0.0.1", LDAPSURL: "ldaps://127.0.0.1",
		Dir: dir, Conf: filepath.Join(dir, "etc", "smb.conf"), Krb5Conf: filepath.Join(dir, "krb5.conf"),
	}
	fail := func(err error) (*Samba, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if s.PKI, err = NewPKI(dir, "samba", "127.0.0.1", "localhost", SambaHost); err != nil {
		return fail(err)
	}
	wrong, err := NewPKI(dir, "wrong", "127.0.0.1")
	if err != nil {
		return fail(err)
	}
	s.WrongCAFile = wrong.CAFile

	// An empty base smb.conf, so that the machine's /etc/samba/smb.conf does not leak in.
	base := filepath.Join(dir, "base.conf")
	if err := os.WriteFile(base, nil, 0o644); err != nil {
		return fail(err)
	}
	prov := exec.Command("samba-tool", "domain", "provision", "-s", base,
		"--targetdir="+dir, "--realm="+SambaRealm, "--domain="+SambaDomain, "--server-role=dc",
		"--dns-backend=NONE", "--host-name=DC1", "--host-ip=127.0.0.1", "--adminpass="+SambaPassword,
		"--use-rfc2307",
		"--option=interfaces = 127.0.0.1", "--option=bind interfaces only = yes",
		"--option=server services = ldap, kdc",
		"--option=log file = "+filepath.Join(dir, "log.%m"))
	start := time.Now()
	if out, err := prov.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("provision: %w\n%s", err, lastLines(out, 20)))
	}
	s.ProvisionTime = time.Since(start)
	// Provision does not keep these; put them at the top of [global] (writeConf).
	if s.conf, err = os.ReadFile(s.Conf); err != nil {
		return fail(err)
	}
	if err := s.writeConf(s.PKI); err != nil {
		return fail(err)
	}
	krb5 := fmt.Sprintf("[libdefaults]\n default_realm = %[1]s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n rdns = false\n\n[realms]\n %[1]s = {\n  kdc = 127.0.0.1\n }\n\n[domain_realm]\n .example.test = %[1]s\n example.test = %[1]s\n", SambaRealm)
	if err := os.WriteFile(s.Krb5Conf, []byte(krb5), 0o644); err != nil {
		return fail(err)
	}

	start = time.Now()
	if err := s.run(); err != nil {
		return fail(err)
	}
	s.StartTime = time.Since(start)
	return s, nil
}

// writeConf writes smb.conf: the provisioned one, with the settings provision does not keep
// and the TLS files of pki at the top of [global].
func (s *Samba) writeConf(pki *PKI) error {
	extra := strings.Join([]string{
		"[global]",
		"\tldap server require strong auth = no",
		"\ttls enabled = yes",
		"\ttls keyfile = " + pki.KeyFile,
		"\ttls certfile = " + pki.CertFile,
		"\ttls cafile = " + pki.CAFile,
	}, "\n")
	return os.WriteFile(s.Conf, bytes.Replace(s.conf, []byte("[global]"), []byte(extra), 1), 0o644)
}

// run starts samba on the written smb.conf and waits until it answers LDAP.
func (s *Samba) run() error {
	cmd := exec.Command("samba", "-i", "-s", s.Conf)
	logFile, err := os.Create(filepath.Join(s.Dir, "samba.out"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start samba: %w", err)
	}
	s.cmd = cmd
	_ = os.WriteFile(SambaPIDFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := ldapReady(); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			out, _ := os.ReadFile(filepath.Join(s.Dir, "samba.out"))
			s.cmd = nil
			return fmt.Errorf("samba exited: %v\n%s", err, lastLines(out, 20))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			killGroup(cmd.Process.Pid)
			s.cmd = nil
			return errors.New("samba did not answer LDAP within 60s")
		}
	}
}

// RestartWithTLS restarts the shared Samba serving the certificate and key of pki (for LDAPS and
// StartTLS) on the same database, and registers a cleanup that restarts it with its own test PKI
// again. Tests that use it must not run in parallel with other Samba tests.
func (s *Samba) RestartWithTLS(tb testing.TB, pki *PKI) {
	tb.Helper()
	restart := func(p *PKI) error {
		sambaMu.Lock()
		defer sambaMu.Unlock()
		if s.cmd != nil {
			killGroup(s.cmd.Process.Pid)
			s.cmd = nil
		}
		if err := s.writeConf(p); err != nil {
			return err
		}
		return s.run()
	}
	if err := restart(pki); err != nil {
		tb.Fatalf("ldaptest: restart samba with other TLS files: %v", err)
	}
	tb.Cleanup(func() {
		if err := restart(s.PKI); err != nil {
			tb.Errorf("ldaptest: restart samba with its test PKI: %v", err)
		}
	})
}

// ldapReady reports whether Samba answers an authenticated LDAP search.
func ldapReady() error {
	cmd := exec.Command("ldapsearch", "-x", "-H", "ldap://127.0.0.1", "-D", SambaAdmin, "-w", SambaPassword,
		"-b", SambaBaseDN, "-s", "base", "-o", "nettimeout=2", "dn")
	return cmd.Run()
}

// Python runs a script with Samba's Python bindings (Debian's /usr/bin/python3), with the
// smb.conf path and sam.ldb URL as its first two arguments, followed by args.
func (s *Samba) Python(tb testing.TB, script string, args ...string) string {
	tb.Helper()
	f := filepath.Join(tb.TempDir(), "script.py")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", append([]string{f, s.Conf, filepath.Join(s.Dir, "private", "sam.ldb")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("ldaptest: samba python script: %v\n%s", err, lastLines(out, 30))
	}
	return string(out)
}

// Tool runs samba-tool against the local database and returns its output.
func (s *Samba) Tool(tb testing.TB, args ...string) string {
	tb.Helper()
	cmd := exec.Command("samba-tool", append(args, "-s", s.Conf)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("ldaptest: samba-tool %s: %v\n%s", strings.Join(args, " "), err, lastLines(out, 20))
	}
	return string(out)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
