// Package connectors defines what a directory connector hands to the sync engine, and the
// attribute mapping and scoping shared by every connector.
//
// A connector reads its directory into a Directory: entries with a stable id and named,
// multi-valued attributes. A Mapping, compiled once from configuration on top of the connector
// flavour's defaults, turns a Directory into a scim.Snapshot: it applies the scoping filters,
// evaluates the attribute expressions, resolves references (members, manager), flattens nested
// groups and validates each record against the Identity Center rules.
package connectors

import (
	"context"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

// Entry is one directory object as a connector read it.
type Entry struct {
	// ID is the stable source id: it becomes the SCIM externalId and must not change when the
	// object is renamed or moved (objectGUID, entryUUID, Google's id, the YAML id).
	ID string `json:"id"`
	// Keys are the other values by which entries refer to this one: its DN, uid,
	// sAMAccountName, primary email or aliases. References in Members and in a mapped manager
	// are resolved through them (and through ID).
	Keys []string `json:"keys,omitempty"`
	// Attributes holds the entry's attributes as the source names them, each multi-valued.
	// Look them up with Get or Values, which ignore the case of the name.
	Attributes map[string][]string `json:"attributes"`
	// Members lists, for a group, references to its direct members: users or groups, by ID or by
	// any of their Keys. References that resolve to nothing are reported, not fatal.
	Members []string `json:"members,omitempty"`
}

// Values returns every value of the named attribute, ignoring the case of the name.
func (e Entry) Values(name string) []string {
	if v, ok := e.Attributes[name]; ok {
		return v
	}
	for k, v := range e.Attributes {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// Get returns the first value of the named attribute, or "".
func (e Entry) Get(name string) string {
	if v := e.Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Directory is the whole of what a connector read. A connector returns it only when the read
// was complete: a partial read is an error, so that nothing is deleted because of it.
type Directory struct {
	Users  []Entry `json:"users"`
	Groups []Entry `json:"groups"`
	// Skipped are records the connector read but had to leave out (a field it cannot read),
	// each with its id: the plan leaves their target objects exactly as they are. A record
	// without an id cannot be matched to anything; it fails the whole read instead.
	Skipped []scim.Problem `json:"skipped,omitempty"`
}

// Source reads a directory. Implementations are safe to call from one goroutine at a time.
type Source interface {
	// Read reads every user and group in the configured scope. It returns an error, and no
	// Directory, when any part of the read failed.
	Read(ctx context.Context) (*Directory, error)
	// Close releases connections.
	Close() error
}

// GroupScoped is implemented by sources that can leave out work for groups out of scope, such
// as the LDAP connector's server-side (in-chain) member searches. inScope is the compiled
// mapping's GroupMayBeInScope; a source given it may return groups for which it is false without
// their members. Whoever opens a source with a mapping passes it on.
type GroupScoped interface {
	SetGroupScope(inScope func(*Entry) bool)
}

// Checker is implemented by sources that can report on themselves for `scimbridge check`:
// whom they authenticated as and what they can see.
type Checker interface {
	Check(ctx context.Context) (CheckReport, error)
}

// CheckReport is what a source says about itself when checked.
type CheckReport struct {
	// Identity is who the source authenticated as (bind DN, impersonated admin, file path).
	Identity string `json:"identity"`
	// Details are further facts worth showing, such as the server's vendor or the base DN.
	Details map[string]string `json:"details,omitempty"`
}

// Flavour is a connector flavour's default mapping: what a config with no mapping gets.
type Flavour struct {
	// Name names the flavour in messages ("file", "active_directory", "openldap", ...).
	Name string
	// User and Group map a target attribute name (as in MappingConfig) to an expression.
	User  map[string]string
	Group map[string]string
}
