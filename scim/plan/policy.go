package plan

// Policy says which kinds of change a run may make, after external-dns.
type Policy string

// Policies.
const (
	// PolicySync makes every change: creates, updates, deprovisioning, membership adds and removes.
	PolicySync Policy = "sync"
	// PolicyUpsertOnly creates and updates but never deletes or disables an object. Memberships
	// of owned groups are still made to match the source.
	PolicyUpsertOnly Policy = "upsert-only"
	// PolicyCreateOnly creates missing users and groups and adds missing memberships; it changes
	// and removes nothing.
	PolicyCreateOnly Policy = "create-only"
)

// Deprovision says what happens to an owned user that left the source (or its scope).
type Deprovision string

// Deprovisioning modes.
const (
	DeprovisionDelete  Deprovision = "delete"
	DeprovisionDisable Deprovision = "disable"
)

// Adopt says which unowned target objects a run may take over.
type Adopt string

// Adoption modes.
const (
	// AdoptNone never takes over an unowned object: a clash is reported and the record skipped.
	AdoptNone Adopt = "none"
	// AdoptExternalID takes over an unowned object whose externalId equals the source id (for
	// example after the state file was lost).
	AdoptExternalID Adopt = "external_id"
	// AdoptName also takes over an unowned user with the same userName, or group with the same
	// displayName (case-insensitively), when migrating from another tool or from manual entry.
	AdoptName Adopt = "name"
)

// Deprovisions reports whether the policy deletes (or, for users in the disable mode, disables)
// the owned objects that left the source, including those AdoptUnmatched takes over.
func (p Policy) Deprovisions() bool { return p == PolicySync }

// AllowsUpdate reports whether the policy changes owned objects that exist: attributes, names
// and externalIds. An adoption is an update every policy makes (see matcher.mayUpdate).
func (p Policy) AllowsUpdate() bool { return p != PolicyCreateOnly }

// AllowsRemove reports whether the policy removes members from owned groups.
func (p Policy) AllowsRemove() bool { return p != PolicyCreateOnly }

// disables reports whether a deprovisioned user is disabled rather than deleted.
func (d Deprovision) disables() bool { return d == DeprovisionDisable }

// byExternalID reports whether the mode takes over an unowned object whose externalId is the
// source id (external_id and name).
func (a Adopt) byExternalID() bool { return a == AdoptExternalID || a == AdoptName }

// byName reports whether the mode takes over an unowned object by userName or displayName.
func (a Adopt) byName() bool { return a == AdoptName }

// The plan asks the options only through these methods: every policy decision is made here.

// mayUpdate reports whether a matched object may be updated: the policy allows updates, or the
// object is being adopted (taking it over writes what the source says, whatever the policy).
func (m *matcher) mayUpdate(adopted string) bool {
	return m.opts.Policy.AllowsUpdate() || adopted != ""
}

// adoptUnmatched reports whether the run takes over unowned objects whose externalId no source
// record has, to deprovision them (Options.AdoptUnmatched).
func (m *matcher) adoptUnmatched() bool {
	return m.opts.AdoptUnmatched && m.opts.Adopt != AdoptNone && m.opts.Policy.Deprovisions()
}
