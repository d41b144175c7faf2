package ldap_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/scim/golden"
)

// TestFlavourGolden maps a sample directory of each flavour, read from an LDIF export, through the
// flavour's default mapping, and compares the snapshot with testdata/<name>.golden: the ids in
// canonical form, the disabled bit, the manager chain, nested groups flattened, all three OpenLDAP
// group shapes and non-ASCII names.
func TestFlavourGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ldap.Config
	}{
		{"ad", ldap.Config{FlavourName: ldap.FlavourActiveDirectory,
			Users:  ldap.UsersConfig{BaseDN: "OU=Staff,DC=example,DC=com"},
			Groups: ldap.GroupsConfig{BaseDN: "OU=Groups,DC=example,DC=com"}}},
		{"openldap", ldap.Config{FlavourName: ldap.FlavourOpenLDAP,
			Users:  ldap.UsersConfig{BaseDN: "ou=people,dc=example,dc=org"},
			Groups: ldap.GroupsConfig{BaseDN: "ou=groups,dc=example,dc=org"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.LDIFFile = filepath.Join("testdata", tc.name+".ldif")
			if err := tc.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			m, err := connectors.Compile(tc.cfg.Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
			if err != nil {
				t.Fatal(err)
			}
			snap := m.Apply(read(t, tc.cfg, nil))
			got, err := json.MarshalIndent(snap, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), got)
		})
	}
}
