package ldaptest

import (
	"strings"
	"testing"
)

// recorder is a testing.TB that records Fatal and Skip instead of stopping.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.fatal = args[0].(string) }
func (r *recorder) Skip(args ...any)  { r.skip = args[0].(string) }

func TestRequireMissingProgram(t *testing.T) {
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		Require(r, map[string]string{"scimbridge-no-such-server": "no-such-package"})
		got := r.skip
		if ci == "true" {
			got = r.fatal
		}
		if !strings.Contains(got, "install the Debian package no-such-package") {
			t.Errorf("CI=%q: fatal %q, skip %q; want the package named (fatal under CI, skip elsewhere)", ci, r.fatal, r.skip)
		}
		if (ci == "true") != (r.fatal != "") || (ci == "true") == (r.skip != "") {
			t.Errorf("CI=%q: fatal %q, skip %q", ci, r.fatal, r.skip)
		}
	}
	r := &recorder{TB: t}
	Require(r, map[string]string{"sh": "dash"})
	if r.fatal != "" || r.skip != "" {
		t.Errorf("an installed program was reported missing: %q %q", r.fatal, r.skip)
	}
}
