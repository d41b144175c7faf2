package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestDefaultsAreSetWhenDecoding: Parse fills in every default, the target's writers and limiter
// included, and Validate only checks: it changes nothing.
func TestDefaultsAreSetWhenDecoding(t *testing.T) {
	c, err := Parse([]byte("source: {type: file, file: {path: d.yaml}}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Profile      Profile
		GroupMembers GroupMembers
		Concurrency  int
		Rate         Rate
		Log          Log
	}{c.Target.Profile, c.Target.GroupMembers, c.Target.Concurrency, c.Target.Rate, c.Log}
	want := got
	want.Profile, want.GroupMembers, want.Concurrency = ProfileIdentityCenter, GroupMembersAuto, 16
	want.Rate = Rate{Initial: 500, Min: 0.5, Max: 1000} // the embedded target: no scim_url
	want.Log = Log{Level: "info", Format: "text"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("defaults after Parse (-got +want):\n%s", diff)
	}
	before := *c
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, *c, cmpopts.IgnoreUnexported(Config{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Validate changed the config (-before +after):\n%s", diff)
	}
}

// TestRateDefaultsFollowTheLimiter: the limits a person leaves out are filled in as the limiter
// always did, so that what was valid stays valid and runs at the same rates.
func TestRateDefaultsFollowTheLimiter(t *testing.T) {
	for _, tc := range []struct {
		rate string
		want Rate
	}{
		{"{}", Rate{Initial: 10, Min: 0.5, Max: 1000}},
		{"{min: 2000}", Rate{Initial: 10, Min: 2000, Max: 2000}},
		{"{max: 0.2}", Rate{Initial: 10, Min: 0.5, Max: 0.5}},
		{"{initial: 3, min: 1, max: 5}", Rate{Initial: 3, Min: 1, Max: 5}},
	} {
		c, err := Parse([]byte("source: {type: file, file: {path: d.yaml}}\ntarget: {scim_url: https://scim.example.com/scim/v2, token: t, rate: "+tc.rate+"}\n"), env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("rate %s: %v", tc.rate, err)
		}
		if diff := cmp.Diff(c.Target.Rate, tc.want); diff != "" {
			t.Errorf("rate %s (-got +want):\n%s", tc.rate, diff)
		}
	}
}

// TestLoadSetsDefaultsAfterTheEnvironment: a default that depends on another key sees the value
// the environment gave that key.
func TestLoadSetsDefaultsAfterTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte("source: {type: file, file: {path: d.yaml}}\nservice: {interval: 10m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SCIMBRIDGE_TARGET_SCIM_URL", "https://scim.example.com/scim/v2")
	t.Setenv("SCIMBRIDGE_TARGET_TOKEN", "t")
	t.Setenv("SCIMBRIDGE_SERVICE_INTERVAL", "2h")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Target.Rate.Initial != 10 {
		t.Errorf("rate.initial = %g, want 10 (the target is remote, set by the environment)", c.Target.Rate.Initial)
	}
	if got, want := c.Service.ReadyMaxAge, 3*Duration(2*60*60e9); got != want {
		t.Errorf("service.ready_max_age = %v, want %v (3 × the interval the environment set)", got, want)
	}
}

// TestReferenceShowsEveryRealDefault: the keys whose default used to live in the wiring, the
// limiter or the reconciler show it in deploy/CONFIG.md.
func TestReferenceShowsEveryRealDefault(t *testing.T) {
	got := map[string]string{}
	for _, v := range EnvVars() {
		got[v.Key] = v.Default
	}
	for key, want := range map[string]string{
		"target.concurrency":          "16",
		"target.rate.initial":         "10; 500 for the embedded target",
		"target.rate.min":             "0.5",
		"target.rate.max":             "1000, or rate.min when higher",
		"target.group_members":        "auto",
		"log.level":                   "info",
		"service.ready_max_age":       "3 × service.interval",
		"source.google.concurrency":   "4",
		"source.ldap.request_timeout": "2m",
	} {
		if got[key] != want {
			t.Errorf("%s: default %q, want %q", key, got[key], want)
		}
	}
}

// TestDescribedDefaultsNameRealKeys: a default written out by key (a connector's, or one that
// depends on other keys) names a key the config has, so that a renamed key cannot leave its
// default behind unseen.
func TestDescribedDefaultsNameRealKeys(t *testing.T) {
	keys := map[string]bool{}
	for _, v := range EnvVars() {
		keys[v.Key] = true
	}
	for key := range connectorDefaults() {
		if !keys[key] {
			t.Errorf("connectorDefaults names %s, which is not a config key", key)
		}
	}
	for key := range describedDefaults {
		if !keys[key] {
			t.Errorf("describedDefaults names %s, which is not a config key", key)
		}
	}
}
