// Package plan computes, without any I/O and without reading a clock, what must change in a
// target so that it holds a desired snapshot: users and groups to create, update, disable or
// delete, and memberships to add or remove. Its output is sorted, so the same inputs give the same
// bytes.
//
// Objects are matched by externalId, the stable source id, so a rename or an email change is an
// update of the same object: its account assignments and memberships stay. scimbridge only updates
// and deletes objects it owns (recorded in the state store); an unowned object that stands in the
// way is adopted only when the options say so, and the plan says that it was.
//
// Ownership rules:
//
//   - An unowned target object is taken over only by adoption (Options.Adopt) or by claiming a
//     pending create (below). With AdoptNone, a desired record whose externalId, or whose userName
//     / displayName, is held by an unowned object is left out: a Clash, with a Problem naming the
//     record and the field, and a hint that names the adopt mode that would take the object over
//     (external_id when the externalIds match, name otherwise). Such a record is never created:
//     Identity Center does not keep externalIds unique, so a create would duplicate the person.
//   - Adoption costs no request when nothing differs: the object is recorded as owned (a Claim
//     with Adopted set, shown as an "adopt" line). When a managed attribute differs, the adoption
//     is an update that lists every differing attribute, including values that adoption clears
//     because the mapping leaves them empty (phones, addresses, title, enterprise fields, ...).
//   - A pending create (a create that was sent but whose answer was never recorded) is claimed
//     from a full read only when its object could have been made by that create: the object was
//     not seen as unowned by the last full read (Owned.SeenUnownedUsers/Groups), and its creation
//     time, when the target gives one, is not earlier than the intent's time minus ClockSkew.
//     Every other pending entry is cleared (ClearPending): a create that is still wanted records
//     its intent again before it is sent.
//   - Renames that form a chain (A takes B's name while B takes C's) are ordered (UserUpdate.After);
//     a cycle (A and B swap names) is broken by first renaming one of its members to a temporary
//     name, TempName, of the form "scimbridge-swap-" followed by 16 hex digits of the SHA-256 of its
//     externalId (32 characters, letters, digits and '-', valid for a userName and a
//     displayName). A cycle of n renames costs n+1 requests; LowerBound counts the extra one.
package plan

import (
	"slices"
	"time"

	"github.com/scimbridge/scimbridge/scim"
)

// Options steer Compute.
type Options struct {
	Policy      Policy
	Deprovision Deprovision
	Adopt       Adopt
	// AdoptUnmatched, with an adopt mode other than none and the sync policy, also takes over the
	// unowned objects that carry an externalId no source record has, to deprovision them: on
	// Identity Center only a SCIM client sets externalId, so such objects were left by the tool
	// before scimbridge for people and groups that left the directory before the switch. Objects
	// without an externalId cannot be told from ones made by hand and are never taken.
	AdoptUnmatched bool
	// MaxMembersPerRequest is the most membership changes one request may carry (100 for
	// Identity Center); it only shapes the request count the plan predicts.
	MaxMembersPerRequest int
}

// ClockSkew is the margin allowed between scimbridge's clock, which dates a pending create, and
// the target's, which dates the object it made: an object created more than ClockSkew before the
// intent was recorded cannot be that create's and is never claimed.
const ClockSkew = 5 * time.Minute

// Owned is what the state store says scimbridge owns: target id to the externalId it wrote, and
// the externalIds of creates that were sent but whose answer was never recorded.
type Owned struct {
	Users         map[string]string
	Groups        map[string]string
	PendingUsers  map[string]bool
	PendingGroups map[string]bool
	// PendingUsersAt and PendingGroupsAt say when each pending create was recorded; a missing or
	// zero time is unknown (the creation time check is then skipped).
	PendingUsersAt  map[string]time.Time
	PendingGroupsAt map[string]time.Time
	// SeenUnownedUsers and SeenUnownedGroups hold the target ids that the last full read saw as
	// not owned: such an object existed before any create since, and is never claimed.
	SeenUnownedUsers  map[string]bool
	SeenUnownedGroups map[string]bool
}

// matcher holds the indexes Compute needs.
type matcher struct {
	opts    Options
	owned   Owned
	current scim.TargetState
	users   objects[scim.TargetUser]
	groups  objects[scim.TargetGroup]
}

// Compute compares the desired snapshot (as returned by scim.Normalize) with the target's current
// state and returns the plan. It never reads a clock and never does I/O.
func Compute(desired scim.Snapshot, current scim.TargetState, owned Owned, opts Options) *Plan {
	if opts.Policy == "" {
		opts.Policy = PolicySync
	}
	if opts.Deprovision == "" {
		opts.Deprovision = DeprovisionDelete
	}
	if opts.Adopt == "" {
		opts.Adopt = AdoptNone
	}
	m := newMatcher(current, owned, opts)
	m.users.setSource(len(desired.Users), func(i int) string { return desired.Users[i].ExternalID }, desired.SkippedIDs(scim.KindUser))
	m.groups.setSource(len(desired.Groups), func(i int) string { return desired.Groups[i].ExternalID }, desired.SkippedIDs(scim.KindGroup))
	p := &Plan{
		Problems:      slices.Clone(desired.Skipped),
		OwnedUsers:    len(owned.Users),
		OwnedGroups:   len(owned.Groups),
		DesiredUsers:  len(desired.Users),
		DesiredGroups: len(desired.Groups),
	}
	users := m.planUsers(p, desired)
	p.UserIDs = users.targetID
	m.planGroups(p, desired, users)
	p.sort()
	return p
}

func newMatcher(current scim.TargetState, owned Owned, opts Options) *matcher {
	return &matcher{
		opts:    opts,
		owned:   owned,
		current: current,
		users: newObjects(scim.KindUser, "userName", current.Users, userKey,
			owned.Users, owned.PendingUsers, owned.PendingUsersAt, owned.SeenUnownedUsers),
		groups: newObjects(scim.KindGroup, "displayName", current.Groups, groupKey,
			owned.Groups, owned.PendingGroups, owned.PendingGroupsAt, owned.SeenUnownedGroups),
	}
}

// clash records a desired record left out because an unowned object holds its externalId or name.
func (m *matcher) clash(p *Plan, c Clash) {
	p.Clashes = append(p.Clashes, c)
	what := "user"
	if c.Kind == scim.KindGroup {
		what = "group"
	}
	reason := c.Field + " " + q(c.TargetName) + " exists in the target and is not owned by scimbridge"
	if c.Field == "externalId" {
		reason = "the " + what + " " + q(c.TargetName) + " in the target carries this externalId and is not owned by scimbridge"
	}
	switch c.Adopt {
	case AdoptExternalID:
		reason += " (its externalId matches: set adopt: external_id to take it over)"
	case AdoptName:
		reason += " (set adopt: name to take it over)"
	default:
		reason += " (its externalId " + q(c.TargetExternalID) + " is another source record's, so no adopt mode takes it)"
	}
	p.Problems = append(p.Problems, scim.Problem{Kind: c.Kind, ID: c.ExternalID, Field: c.Field, Reason: reason, Dropped: true})
}

// nameAdopt is the adopt mode that would take over an unowned object found by name: name, unless
// its externalId stands for another source record.
func (m *matcher) nameAdopt(targetExt string, source map[string]bool) Adopt {
	if targetExt != "" && source[targetExt] {
		return ""
	}
	return AdoptName
}

// claimable reports whether an object found by a pending create's externalId could have been
// made by that create (see the package doc).
func claimable(id string, created time.Time, seenUnowned map[string]bool, pendingAt time.Time) bool {
	if seenUnowned[id] {
		return false
	}
	return created.IsZero() || pendingAt.IsZero() || !created.Before(pendingAt.Add(-ClockSkew))
}
