package ldap_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

// inChainRead reads with nested server, the group scope of m (when not nil) and n in-chain
// searches at once, and returns the directory, the number of in-chain searches and the time.
func inChainRead(t *testing.T, cfg ldap.Config, m *connectors.Mapping, n int) (*connectors.Directory, int64, time.Duration) {
	t.Helper()
	src, err := cfg.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if m != nil {
		src.(connectors.GroupScoped).SetGroupScope(m.GroupMayBeInScope)
	}
	ldap.SetInChainConcurrency(src, n)
	var searches atomic.Int64
	ldap.SetAfterPage(src, func(what string, page int) {
		if what == "nested groups" && page == 1 {
			searches.Add(1)
		}
	})
	start := time.Now()
	dir, err := src.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return dir, searches.Load(), time.Since(start)
}

// domainRootNesting is adConfig reading every group of the domain (Samba's built-in ones too,
// as a config with the domain root as groups.base_dn does) with nested server.
func domainRootNesting(s *ldaptest.Samba) ldap.Config {
	cfg := adConfig(s)
	cfg.Groups.BaseDN = ldaptest.SambaBaseDN
	cfg.Groups.Nested = ldap.NestedServer
	return cfg
}

// TestSambaInChainSearchesOnlyGroupsInScope: with nested server, the groups the scope leaves
// out get no in-chain search, and the groups in scope get their transitive members.
func TestSambaInChainSearchesOnlyGroupsInScope(t *testing.T) {
	s := adSamba(t)
	cfg := domainRootNesting(s)
	m, err := connectors.Compile(ldap.ActiveDirectory, connectors.MappingConfig{},
		connectors.ScopeConfig{Groups: connectors.GroupScope{Names: []string{"G1", "G2", "G3", "Big"}}})
	if err != nil {
		t.Fatal(err)
	}
	dir, searches, took := inChainRead(t, cfg, m, 4)
	t.Logf("%d groups read, %d in-chain searches, %v", len(dir.Groups), searches, took.Round(time.Millisecond))
	if searches != 4 {
		t.Errorf("%d in-chain searches for %d groups read, want 4 (the groups in scope)", searches, len(dir.Groups))
	}
	if len(dir.Groups) < 20 {
		t.Fatalf("only %d groups read from the domain root; the test needs Samba's built-in groups out of scope", len(dir.Groups))
	}
	groups := membersByName(t, dir)
	want := map[string][]string{
		"G1": {"alice", "bob", "carol", "jmueller"},
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
	snap := m.Apply(dir)
	if len(snap.Groups) != 4 {
		t.Errorf("snapshot has %d groups, want 4", len(snap.Groups))
	}
	for _, g := range snap.Groups {
		if g.DisplayName == "G1" && len(g.Members) != 4 {
			t.Errorf("G1 in the snapshot has %d members, want 4", len(g.Members))
		}
	}
}

// TestSambaInChainFigures prints the searches and wall time of a nested-server read of every
// group of the domain: one search at a time for every group (as before), several at once, and
// only the groups in scope. Set SCIMBRIDGE_LDAP_FIGURES=1 to run it.
func TestSambaInChainFigures(t *testing.T) {
	if os.Getenv("SCIMBRIDGE_LDAP_FIGURES") == "" {
		t.Skip("set SCIMBRIDGE_LDAP_FIGURES=1 to print the in-chain figures")
	}
	s := adSamba(t)
	cfg := domainRootNesting(s)
	m, err := connectors.Compile(ldap.ActiveDirectory, connectors.MappingConfig{},
		connectors.ScopeConfig{Groups: connectors.GroupScope{Names: []string{"G1", "G2", "G3", "Big"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		m    *connectors.Mapping
		n    int
	}{
		{"every group, one at a time (before)", nil, 1},
		{"every group, 4 at once", nil, 4},
		{"groups in scope only, one at a time", m, 1},
		{"groups in scope only, 4 at once (after)", m, 4},
	} {
		dir, searches, took := inChainRead(t, cfg, tc.m, tc.n)
		t.Logf("%-42s %d groups read, %3d in-chain searches, %v", tc.name, len(dir.Groups), searches, took.Round(time.Millisecond))
	}
}

// nestFixture adds OU=Nest with group Top (alice and group Inner), and Inner (carol) under
// OU=Outside: a nested group outside the groups' base DN.
const nestFixture = `
import sys
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
lp = LoadParm(); lp.load(sys.argv[1])
db = SamDB(url=sys.argv[2], session_info=system_session(), lp=lp)
B = "DC=example,DC=test"
db.transaction_start()
db.add({"dn": "OU=Nest," + B, "objectClass": "organizationalUnit"})
inner = "CN=Inner,OU=Outside," + B
db.add({"dn": inner, "objectClass": "group", "sAMAccountName": "Inner", "member": ["CN=Carol Cruz,OU=Staff," + B]})
db.add({"dn": "CN=Top,OU=Nest," + B, "objectClass": "group", "sAMAccountName": "Top",
        "member": ["CN=Alice Archer,OU=Staff," + B, inner]})
db.transaction_commit()
`

var nestOnce sync.Once

// TestSambaInChainFollowsGroupsOutsideTheBase: with nested server, members reach a group through
// a nested group outside groups.base_dn, which the client-side flattening cannot see.
func TestSambaInChainFollowsGroupsOutsideTheBase(t *testing.T) {
	s := adSamba(t)
	nestOnce.Do(func() { s.Python(t, nestFixture) })
	cfg := adConfig(s)
	cfg.Groups.BaseDN = "OU=Nest," + ldaptest.SambaBaseDN
	cfg.Groups.Nested = ldap.NestedServer
	if diff := cmp.Diff([]string{"alice", "carol"}, membersByName(t, read(t, cfg, nil))["Top"]); diff != "" {
		t.Errorf("in-chain members of Top (-want +got):\n%s", diff)
	}
	cfg.Groups.Nested = ldap.NestedClient
	got := membersByName(t, read(t, cfg, nil))["Top"]
	if len(got) != 2 || got[0] != "alice" || !strings.HasSuffix(got[1], "(unresolved)") {
		t.Errorf("client-side members of Top = %q, want alice and Inner unresolved", got)
	}
}
