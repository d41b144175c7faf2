package ldap_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/conformance"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/scim"
)

// snapshot maps a directory with the flavour's default mapping, as the sync engine will.
func snapshot(t *testing.T, cfg ldap.Config, dir *connectors.Directory) scim.Snapshot {
	t.Helper()
	m, err := connectors.Compile(cfg.Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
	if err != nil {
		t.Fatalf("Compile(%s): %v", cfg.FlavourName, err)
	}
	return m.Apply(dir)
}

// groupUsers returns each group's members as userNames, keyed by displayName.
func groupUsers(snap scim.Snapshot) map[string][]string {
	byID := map[string]string{}
	for _, u := range snap.Users {
		byID[u.ExternalID] = u.UserName
	}
	out := map[string][]string{}
	for _, g := range snap.Groups {
		var names []string
		for _, m := range g.Members {
			names = append(names, byID[m])
		}
		slices.Sort(names)
		out[g.DisplayName] = names
	}
	return out
}

func TestOpenLDAPConformanceAndMapping(t *testing.T) {
	s := startFixtureSlapd(t)
	cfg := olConfig(s)
	src, err := cfg.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	conformance.CheckSource(t, src)

	snap := snapshot(t, cfg, read(t, cfg, nil))
	if len(snap.Skipped) > 0 {
		t.Errorf("skipped: %v", snap.Skipped)
	}
	want := map[string][]string{
		"eng":      {"alice@example.test", "bob@example.test"}, // eng -> platform -> eng: the cycle is tolerated
		"platform": {"alice@example.test", "bob@example.test"},
		"ops":      {"carol@example.test", "dave"},
		"posix":    {"alice@example.test", "dave"},
	}
	if diff := cmp.Diff(want, groupUsers(snap)); diff != "" {
		t.Errorf("flattened groups (-want +got):\n%s", diff)
	}
	users := map[string]scim.User{}
	for _, u := range snap.Users {
		users[u.UserName] = u
	}
	if users["bob@example.test"].Enterprise.Manager != users["alice@example.test"].ExternalID {
		t.Errorf("bob's manager = %q, want alice's id %q", users["bob@example.test"].Enterprise.Manager, users["alice@example.test"].ExternalID)
	}
	if c := users["carol@example.test"]; c.DisplayName != "Zoë Ångström" || c.FamilyName != "Ångström" {
		t.Errorf("carol = %+v", c)
	}
}

func TestSambaConformanceAndMapping(t *testing.T) {
	s := adSamba(t)
	cfg := adConfig(s)
	src, err := cfg.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// G1 holds eve, who is outside the configured OU: that one reference stays unresolved.
	conformance.CheckSourceOptions(t, src, conformance.Options{AllowUnresolvedMembers: true})
	dir, err := src.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if un := conformance.UnresolvedMembers(dir); len(un) != 1 {
		t.Errorf("unresolved members: %v, want only eve in G1", un)
	}

	snap := snapshot(t, cfg, dir)
	groups := groupUsers(snap)
	want := []string{"alice@example.test", "bob@example.test", "carol@example.test", "jmueller@example.test"}
	if diff := cmp.Diff(want, groups["G1"]); diff != "" {
		t.Errorf("G1 flattened (three deep) (-want +got):\n%s", diff)
	}
	if n := len(groups["Big"]); n != bigGroup {
		t.Errorf("Big has %d members in the snapshot, want %d", n, bigGroup)
	}
	for _, u := range snap.Users {
		if wantActive := u.UserName != "bob@example.test"; u.Active != wantActive {
			t.Errorf("%s: active = %v, want %v", u.UserName, u.Active, wantActive)
		}
		if u.UserName == "jmueller@example.test" && (u.DisplayName != "Jürgen Müller" || u.GivenName != "Jürgen") {
			t.Errorf("non-ASCII user mapped as %+v", u)
		}
		if u.UserName == "alice@example.test" && (u.Enterprise.Department != "Engineering" || u.Enterprise.EmployeeNumber != "E-1") {
			t.Errorf("alice's enterprise attributes: %+v", u.Enterprise)
		}
	}
	var bob, alice scim.User
	for _, u := range snap.Users {
		switch u.UserName {
		case "bob@example.test":
			bob = u
		case "alice@example.test":
			alice = u
		}
	}
	if bob.Enterprise.Manager != alice.ExternalID || alice.ExternalID == "" {
		t.Errorf("bob's manager %q, want alice %q", bob.Enterprise.Manager, alice.ExternalID)
	}
}
