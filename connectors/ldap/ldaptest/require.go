// Package ldaptest starts real directory servers for tests: an OpenLDAP slapd from a generated
// configuration on loopback ports, and a Samba AD DC provisioned into a temporary directory.
//
// A missing server program skips the test with the Debian package to install, except under CI
// (CI=true), where it fails the test.
package ldaptest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
)

// Require checks that each program (name -> Debian package) is installed. When one is missing
// it fails the test under CI=true and skips it elsewhere, naming the package.
func Require(tb testing.TB, programs map[string]string) {
	tb.Helper()
	for prog, pkg := range programs {
		if _, err := lookPath(prog); err != nil {
			Missing(tb, fmt.Sprintf("ldaptest: %s not found: install the Debian package %s (apt-get install -y %s)", prog, pkg, pkg))
		}
	}
}

// Missing fails the test under CI=true and skips it elsewhere, with msg.
func Missing(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
		return
	}
	tb.Skip(msg)
}

// lookPath also finds programs in the sbin directories, which a non-login PATH may lack.
func lookPath(prog string) (string, error) {
	if p, err := exec.LookPath(prog); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + prog
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ldaptest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
