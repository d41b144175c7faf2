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
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scimbridge/scimbridge/scim"
)

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

// Ref names a target object in a plan.
type Ref struct {
	ID         string `json:"id,omitempty"`
	ExternalID string `json:"externalId,omitempty"`
	Name       string `json:"name"`
	// Adopted is set on a deprovision of an unowned object taken over by AdoptUnmatched.
	Adopted string `json:"adopted,omitempty"`
}

// UserUpdate is an owned user whose attributes differ from the source.
type UserUpdate struct {
	ID     string    `json:"id"`
	User   scim.User `json:"user"`
	Fields []Field   `json:"fields"`
	// Adopted is set when this update takes over an unowned user ("external_id" or "userName").
	Adopted string `json:"adopted,omitempty"`
	// After names (by externalId) the user whose rename must be sent first: it frees the
	// userName this one takes.
	After string `json:"after,omitempty"`
	// TempName, when set, is a temporary userName this user is renamed to before any other
	// rename of the run, to break a cycle of renames (a swap); one extra request.
	TempName string `json:"tempName,omitempty"`
}

// Field is one attribute that changes, with its old and new value.
type Field struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// GroupUpdate is an owned group whose displayName or externalId differs from the source.
type GroupUpdate struct {
	ID         string `json:"id"`
	ExternalID string `json:"externalId"`
	From       string `json:"from"`
	To         string `json:"to"`
	// SetExternalID is true when the target's externalId must be (re)written.
	SetExternalID bool   `json:"setExternalId,omitempty"`
	Adopted       string `json:"adopted,omitempty"`
	// After and TempName order renames as for users (see UserUpdate).
	After    string `json:"after,omitempty"`
	TempName string `json:"tempName,omitempty"`
}

// MemberChange lists the memberships of one group to add and remove. Add and Remove name users by
// Ref: ID is set when the user exists in the target, ExternalID when the source knows it.
type MemberChange struct {
	Group  Ref   `json:"group"`
	Add    []Ref `json:"add,omitempty"`
	Remove []Ref `json:"remove,omitempty"`
}

// Claim records ownership of a target object without any request: an object that scimbridge
// created but never recorded (its create's answer was lost in a crash), or, when Adopted is set,
// an unowned object adopted as it is because none of its managed attributes differ.
type Claim struct {
	Kind       string `json:"kind"`
	ExternalID string `json:"externalId"`
	ID         string `json:"id"`
	// Adopted names how an adopted object was matched ("external_id", "userName",
	// "displayName"); empty for the claim of a pending create.
	Adopted string `json:"adopted,omitempty"`
	// Name is the object's userName or displayName, for the plan's text.
	Name string `json:"name,omitempty"`
}

// Clash is a desired record left out because an object scimbridge does not own holds its
// externalId, userName or displayName.
type Clash struct {
	Kind       string `json:"kind"`
	ExternalID string `json:"externalId"`
	// Field is what clashes: "externalId", "userName" or "displayName".
	Field            string `json:"field"`
	TargetID         string `json:"targetId"`
	TargetExternalID string `json:"targetExternalId,omitempty"`
	TargetName       string `json:"targetName"`
	// Adopt is the adopt mode that would take the object over ("external_id" or "name"); empty
	// when none would (its externalId names another source record).
	Adopt Adopt `json:"adopt,omitempty"`
}

// Changes is everything a run would do, each list sorted by externalId (or name).
type Changes struct {
	CreateUsers  []scim.User    `json:"createUsers,omitempty"`
	UpdateUsers  []UserUpdate   `json:"updateUsers,omitempty"`
	DisableUsers []Ref          `json:"disableUsers,omitempty"`
	DeleteUsers  []Ref          `json:"deleteUsers,omitempty"`
	CreateGroups []scim.Group   `json:"createGroups,omitempty"`
	UpdateGroups []GroupUpdate  `json:"updateGroups,omitempty"`
	DeleteGroups []Ref          `json:"deleteGroups,omitempty"`
	Members      []MemberChange `json:"members,omitempty"`
	// Claims and Forget change only the state store: objects found to be ours, and owned objects
	// that no longer exist in the target.
	Claims []Claim `json:"claims,omitempty"`
	Forget []Claim `json:"forget,omitempty"`
	// ClearPending lists pending creates that this plan resolves without claiming (their object
	// is not on the target, or is not one this create could have made).
	ClearPending []Claim `json:"clearPending,omitempty"`
}

// Plan is the result of Compute.
type Plan struct {
	Changes
	// Problems are records that were skipped or changes that cannot be made, with the reason.
	Problems []scim.Problem `json:"problems,omitempty"`
	// Clashes are the desired records left out because an unowned object holds their
	// externalId or name; each also has a Problem.
	Clashes []Clash `json:"clashes,omitempty"`
	// TargetNotRead is set (by the caller) when the plan was computed against the state store's
	// record instead of a read of the target: unowned objects are then those the last full read saw.
	TargetNotRead bool `json:"targetNotRead,omitempty"`
	// Unmanaged counts target objects that scimbridge does not own and leaves alone.
	UnmanagedUsers  int `json:"unmanagedUsers"`
	UnmanagedGroups int `json:"unmanagedGroups"`
	// OwnedUsers and OwnedGroups count what scimbridge owned before this plan (guards use them).
	OwnedUsers  int `json:"ownedUsers"`
	OwnedGroups int `json:"ownedGroups"`
	// UserIDs maps the externalId of every desired user that exists in the target to its target
	// id, for resolving managers and members; users created by the run join it as they are.
	UserIDs map[string]string `json:"-"`
	// DesiredUsers and DesiredGroups count the source after mapping and validation.
	DesiredUsers  int `json:"desiredUsers"`
	DesiredGroups int `json:"desiredGroups"`
}

// Empty reports whether the plan writes nothing to the target.
func (p *Plan) Empty() bool { return p.Writes() == 0 }

// Writes counts the objects and memberships the plan changes in the target (not requests).
func (p *Plan) Writes() int {
	n := len(p.CreateUsers) + len(p.UpdateUsers) + len(p.DisableUsers) + len(p.DeleteUsers) +
		len(p.CreateGroups) + len(p.UpdateGroups) + len(p.DeleteGroups)
	for _, m := range p.Members {
		n += len(m.Add) + len(m.Remove)
	}
	return n
}

// Adoptions counts the unowned objects the plan takes over, with or without a write.
func (p *Plan) Adoptions() int {
	n := 0
	for _, c := range p.Claims {
		if c.Adopted != "" {
			n++
		}
	}
	for _, u := range p.UpdateUsers {
		if u.Adopted != "" {
			n++
		}
	}
	for _, g := range p.UpdateGroups {
		if g.Adopted != "" {
			n++
		}
	}
	for _, refs := range [][]Ref{p.DeleteUsers, p.DisableUsers, p.DeleteGroups} {
		for _, r := range refs {
			if r.Adopted != "" {
				n++
			}
		}
	}
	return n
}

// LeftOut counts the source records left out as a whole: invalid records and clashes.
func (p *Plan) LeftOut() int {
	n := 0
	for _, pr := range p.Problems {
		if pr.Dropped {
			n++
		}
	}
	return n
}

// Deprovisions counts the users deleted or disabled and the groups deleted. A user the directory
// disabled counts too: a mapping mistake (`active` read from a misspelt attribute) or a scope
// error would otherwise lock out everyone without a guard noticing.
func (p *Plan) Deprovisions() (users, groups int) {
	users = len(p.DeleteUsers) + len(p.DisableUsers)
	for _, u := range p.UpdateUsers {
		if u.Disables() {
			users++
		}
	}
	return users, len(p.DeleteGroups)
}

// Disables reports whether the update disables the user (active goes from true to false): the
// directory disabled it. Such an update counts as a disable, not an update, in the summary and
// in a run's counts.
func (u UserUpdate) Disables() bool {
	for _, f := range u.Fields {
		if f.Name == "active" {
			return f.To == "false"
		}
	}
	return false
}

// matcher holds the indexes Compute needs.
type matcher struct {
	opts    Options
	owned   Owned
	current scim.TargetState

	userByID        map[string]*scim.TargetUser
	userByExternal  map[string][]*scim.TargetUser
	userByName      map[string]*scim.TargetUser
	groupByID       map[string]*scim.TargetGroup
	groupByExternal map[string][]*scim.TargetGroup
	groupByName     map[string]*scim.TargetGroup
	ownedUserByExt  map[string]string
	ownedGroupByExt map[string]string
	// sourceUsers holds every user id the source has, sent or skipped: adoption by name never
	// takes an object that stands for another source record.
	sourceUsers  map[string]bool
	sourceGroups map[string]bool
	// skippedUsers and skippedGroups are the source records left out as a whole: their target
	// objects are left exactly as they are.
	skippedUsers  map[string]bool
	skippedGroups map[string]bool
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
	m.skippedUsers = desired.SkippedIDs(scim.KindUser)
	m.skippedGroups = desired.SkippedIDs(scim.KindGroup)
	m.sourceUsers = make(map[string]bool, len(desired.Users)+len(m.skippedUsers))
	for _, u := range desired.Users {
		m.sourceUsers[u.ExternalID] = true
	}
	for id := range m.skippedUsers {
		m.sourceUsers[id] = true
	}
	m.sourceGroups = make(map[string]bool, len(desired.Groups)+len(m.skippedGroups))
	for id := range m.skippedGroups {
		m.sourceGroups[id] = true
	}
	for _, g := range desired.Groups {
		m.sourceGroups[g.ExternalID] = true
	}
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
	m := &matcher{
		opts:            opts,
		owned:           owned,
		current:         current,
		userByID:        make(map[string]*scim.TargetUser, len(current.Users)),
		userByExternal:  make(map[string][]*scim.TargetUser, len(current.Users)),
		userByName:      make(map[string]*scim.TargetUser, len(current.Users)),
		groupByID:       make(map[string]*scim.TargetGroup, len(current.Groups)),
		groupByExternal: make(map[string][]*scim.TargetGroup, len(current.Groups)),
		groupByName:     make(map[string]*scim.TargetGroup, len(current.Groups)),
		ownedUserByExt:  make(map[string]string, len(owned.Users)),
		ownedGroupByExt: make(map[string]string, len(owned.Groups)),
	}
	for i := range current.Users {
		u := &current.Users[i]
		m.userByID[u.ID] = u
		if u.ExternalID != "" {
			m.userByExternal[u.ExternalID] = append(m.userByExternal[u.ExternalID], u)
		}
		m.userByName[strings.ToLower(u.UserName)] = u
	}
	for i := range current.Groups {
		g := &current.Groups[i]
		m.groupByID[g.ID] = g
		if g.ExternalID != "" {
			m.groupByExternal[g.ExternalID] = append(m.groupByExternal[g.ExternalID], g)
		}
		m.groupByName[strings.ToLower(g.DisplayName)] = g
	}
	for id, ext := range owned.Users {
		m.ownedUserByExt[ext] = id
	}
	for id, ext := range owned.Groups {
		m.ownedGroupByExt[ext] = id
	}
	return m
}

func (m *matcher) userOwned(id string) bool  { _, ok := m.owned.Users[id]; return ok }
func (m *matcher) groupOwned(id string) bool { _, ok := m.owned.Groups[id]; return ok }

// userResolution tells, for every desired user, which target user (if any) it is.
type userResolution struct {
	// targetID maps a desired user's externalId to the target id it has or will keep; new users
	// are absent until created.
	targetID map[string]string
	// blocked holds desired users that cannot be written (a clash with an unowned user).
	blocked map[string]bool
	// extByTargetID maps target user ids to the externalId they stand for, for translating the
	// target's member lists and managers.
	extByTargetID map[string]string
	// leaving holds target ids of owned users that are deleted by this plan.
	deleted map[string]bool
	// untouchable holds target ids of users the plan must leave exactly as they are (skipped
	// source records).
	untouchable map[string]bool
}

func (m *matcher) planUsers(p *Plan, desired scim.Snapshot) *userResolution {
	r := &userResolution{
		targetID:      make(map[string]string, len(desired.Users)),
		blocked:       map[string]bool{},
		extByTargetID: make(map[string]string, len(m.current.Users)),
		deleted:       map[string]bool{},
		untouchable:   map[string]bool{},
	}
	for _, u := range m.current.Users {
		if ext, ok := m.owned.Users[u.ID]; ok {
			r.extByTargetID[u.ID] = ext
		} else if u.ExternalID != "" {
			r.extByTargetID[u.ID] = u.ExternalID
		}
	}
	// Pass 1: owned users first, then claims and adoptions, so that no target user is matched twice.
	matched := make(map[string]bool, len(desired.Users))
	type match struct {
		t       *scim.TargetUser
		adopted string
		claim   bool
	}
	matches := make([]match, len(desired.Users))
	for i, want := range desired.Users {
		if id, ok := m.ownedUserByExt[want.ExternalID]; ok {
			if t := m.userByID[id]; t != nil {
				matches[i] = match{t: t}
				matched[id] = true
			}
		}
	}
	for i, want := range desired.Users {
		if matches[i].t != nil {
			continue
		}
		if t, adopted, claim := m.matchUser(want, matched); t != nil {
			matches[i] = match{t, adopted, claim}
			matched[t.ID] = true
		}
	}
	claimed := map[string]bool{}
	for i, mt := range matches {
		if mt.claim {
			claimed[desired.Users[i].ExternalID] = true
		}
	}
	// Pass 2: owned users that match nothing are deprovisioned; owned users missing from the
	// target are forgotten (and created again if still desired).
	skipped := m.skippedUsers
	for id, ext := range m.owned.Users {
		t, exists := m.userByID[id]
		if !exists {
			p.Forget = append(p.Forget, Claim{Kind: scim.KindUser, ExternalID: ext, ID: id})
			continue
		}
		if matched[id] {
			continue
		}
		if skipped[ext] {
			r.untouchable[id] = true
			continue
		}
		ref := Ref{ID: id, ExternalID: ext, Name: t.UserName}
		switch {
		case m.opts.Policy != PolicySync:
		case m.opts.Deprovision == DeprovisionDisable:
			if t.Active {
				p.DisableUsers = append(p.DisableUsers, ref)
			}
		default:
			p.DeleteUsers = append(p.DeleteUsers, ref)
			r.deleted[id] = true
		}
	}
	if m.adoptUnmatched() {
		m.deprovisionUnmatchedUsers(p, r, matched)
	}
	// Pass 3: desired users that match nothing are created, unless an unowned user holds their
	// externalId or userName. A create may take a userName that an owned user gives up in this
	// run (renamed away or deleted: apply orders those first).
	for i, want := range desired.Users {
		if matches[i].t != nil {
			continue
		}
		if c := m.unownedByExternal(m.userByExternal[want.ExternalID], matched); c != nil {
			m.clash(p, Clash{Kind: scim.KindUser, ExternalID: want.ExternalID, Field: "externalId", TargetID: c.ID, TargetExternalID: c.ExternalID, TargetName: c.UserName, Adopt: AdoptExternalID})
			r.blocked[want.ExternalID] = true
			continue
		}
		if clash := m.userByName[strings.ToLower(want.UserName)]; clash != nil && !matched[clash.ID] && !r.deleted[clash.ID] {
			if m.userOwned(clash.ID) {
				p.Problems = append(p.Problems, scim.Problem{Kind: scim.KindUser, ID: want.ExternalID, Field: "userName",
					Reason: "userName is held by a deprovisioned user of this sync (" + m.owned.Users[clash.ID] + "); delete that user to free it", Dropped: true})
			} else {
				m.clash(p, Clash{Kind: scim.KindUser, ExternalID: want.ExternalID, Field: "userName", TargetID: clash.ID, TargetExternalID: clash.ExternalID, TargetName: clash.UserName,
					Adopt: m.nameAdopt(clash.ExternalID, m.sourceUsers)})
			}
			r.blocked[want.ExternalID] = true
		}
	}
	// Renames: each matched user keeps or takes a userName; a name held by another matched user
	// that gives it up in this run is taken after that user's rename (chains), and cycles go
	// through a temporary name.
	// Only the renamers are indexed: a no-change plan of a large directory allocates nothing here.
	var names []rename
	idx := map[string]int{}   // target id of a renamer -> its index in names
	renameOf := map[int]int{} // desired index -> index in names
	for i, want := range desired.Users {
		mt := matches[i]
		if mt.t == nil || r.blocked[want.ExternalID] || (m.opts.Policy == PolicyCreateOnly && mt.adopted == "") {
			continue
		}
		if !strings.EqualFold(want.UserName, mt.t.UserName) {
			idx[mt.t.ID], renameOf[i] = len(names), len(names)
			names = append(names, rename{ext: want.ExternalID, to: want.UserName, self: mt.t.ID, active: true})
		}
	}
	resolveRenames(names, idx, "user", func(name, self string) (string, string) {
		c := m.userByName[strings.ToLower(name)]
		switch {
		case c == nil || c.ID == self || r.deleted[c.ID]:
			return "", ""
		case matched[c.ID]:
			return c.ID, ""
		case m.userOwned(c.ID):
			return "", "is held by another user owned by scimbridge (" + m.owned.Users[c.ID] + ")"
		default:
			return "", "exists in the target and is not owned by scimbridge"
		}
	}, func(name string) bool { return m.userByName[strings.ToLower(name)] != nil })
	// A create may take the userName of a matched user only when that user's rename gives it up.
	for i, want := range desired.Users {
		if matches[i].t != nil || r.blocked[want.ExternalID] {
			continue
		}
		if c := m.userByName[strings.ToLower(want.UserName)]; c != nil && matched[c.ID] {
			if j, ok := idx[c.ID]; !ok || names[j].reason != "" {
				p.Problems = append(p.Problems, scim.Problem{Kind: scim.KindUser, ID: want.ExternalID, Field: "userName",
					Reason: "userName is held by another user of this sync that keeps it in this run", Dropped: true})
				r.blocked[want.ExternalID] = true
			}
		}
	}
	for i, want := range desired.Users {
		if r.blocked[want.ExternalID] {
			continue
		}
		if mgr := want.Enterprise.Manager; r.blocked[mgr] {
			p.Problems = append(p.Problems, scim.Problem{Kind: scim.KindUser, ID: want.ExternalID, Field: "manager",
				Reason: "manager " + q(mgr) + " cannot be written in this run; left unset"})
			want.Enterprise.Manager = ""
		}
		mt := matches[i]
		if mt.t == nil {
			p.CreateUsers = append(p.CreateUsers, want)
			continue
		}
		t := mt.t
		r.targetID[want.ExternalID] = t.ID
		r.extByTargetID[t.ID] = want.ExternalID
		if mt.claim {
			p.Claims = append(p.Claims, Claim{Kind: scim.KindUser, ExternalID: want.ExternalID, ID: t.ID})
		}
		if m.opts.Policy == PolicyCreateOnly && mt.adopted == "" {
			continue
		}
		var rn rename
		if j, ok := renameOf[i]; ok {
			rn = names[j]
		}
		if rn.active && rn.reason != "" {
			p.Problems = append(p.Problems, scim.Problem{Kind: scim.KindUser, ID: want.ExternalID, Field: "userName",
				Reason: "cannot rename to " + q(want.UserName) + ": that userName " + rn.reason})
			want.UserName = t.UserName
		}
		fields := diffUser(t.User, want, r.extByTargetID)
		switch {
		case len(fields) > 0:
			u := UserUpdate{ID: t.ID, User: want, Fields: fields, Adopted: mt.adopted}
			if rn.active && rn.reason == "" {
				u.TempName = rn.temp
				if rn.after >= 0 {
					u.After = names[rn.after].ext
				}
			}
			p.UpdateUsers = append(p.UpdateUsers, u)
		case mt.adopted != "":
			p.Claims = append(p.Claims, Claim{Kind: scim.KindUser, ExternalID: want.ExternalID, ID: t.ID, Adopted: mt.adopted, Name: t.UserName})
		}
	}
	for ext := range m.owned.PendingUsers {
		if !claimed[ext] {
			p.ClearPending = append(p.ClearPending, Claim{Kind: scim.KindUser, ExternalID: ext})
		}
	}
	for _, u := range m.current.Users {
		if !m.userOwned(u.ID) && !matched[u.ID] {
			p.UnmanagedUsers++
		}
	}
	return r
}

// AdoptedUnmatched marks the adoption of an object left behind by the tool before scimbridge
// (Options.AdoptUnmatched), taken over to be deprovisioned.
const AdoptedUnmatched = "unmatched externalId"

func (m *matcher) adoptUnmatched() bool {
	return m.opts.AdoptUnmatched && m.opts.Adopt != AdoptNone && m.opts.Policy == PolicySync
}

// deprovisionUnmatchedUsers takes over the unowned users that carry an externalId no source
// record has, and deletes or disables them as the deprovisioning mode says. A disable writes the
// user as the target holds it with active false, and records it as owned from then on; a user
// already inactive is only recorded.
func (m *matcher) deprovisionUnmatchedUsers(p *Plan, r *userResolution, matched map[string]bool) {
	for i := range m.current.Users {
		t := &m.current.Users[i]
		if t.ExternalID == "" || m.userOwned(t.ID) || matched[t.ID] || m.sourceUsers[t.ExternalID] {
			continue
		}
		matched[t.ID] = true
		if m.opts.Deprovision != DeprovisionDisable {
			p.DeleteUsers = append(p.DeleteUsers, Ref{ID: t.ID, ExternalID: t.ExternalID, Name: t.UserName, Adopted: AdoptedUnmatched})
			r.deleted[t.ID] = true
			continue
		}
		if !t.Active {
			p.Claims = append(p.Claims, Claim{Kind: scim.KindUser, ExternalID: t.ExternalID, ID: t.ID, Adopted: AdoptedUnmatched, Name: t.UserName})
			continue
		}
		u := t.User
		u.Active = false
		u.Enterprise.Manager = r.extByTargetID[t.Enterprise.Manager]
		p.UpdateUsers = append(p.UpdateUsers, UserUpdate{ID: t.ID, User: u, Fields: diffUser(t.User, u, r.extByTargetID), Adopted: AdoptedUnmatched})
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

// unownedByExternal returns the first candidate that is neither owned nor matched in this plan.
func (m *matcher) unownedByExternal(cands []*scim.TargetUser, matched map[string]bool) *scim.TargetUser {
	for _, c := range cands {
		if !m.userOwned(c.ID) && !matched[c.ID] {
			return c
		}
	}
	return nil
}

// claimable reports whether an object found by a pending create's externalId could have been
// made by that create (see the package doc).
func claimable(id string, created time.Time, seenUnowned map[string]bool, pendingAt time.Time) bool {
	if seenUnowned[id] {
		return false
	}
	return created.IsZero() || pendingAt.IsZero() || !created.Before(pendingAt.Add(-ClockSkew))
}

// matchUser finds the target user a desired user is: owned by externalId, claimed from a pending
// create, or adopted as the options allow. adopted names how an unowned user was taken over;
// claim is true when ownership must be recorded without a change.
func (m *matcher) matchUser(want scim.User, matched map[string]bool) (t *scim.TargetUser, adopted string, claim bool) {
	for _, c := range m.userByExternal[want.ExternalID] {
		if m.userOwned(c.ID) || matched[c.ID] {
			continue // owned under another source id: not this one
		}
		if m.owned.PendingUsers[want.ExternalID] && claimable(c.ID, c.Created, m.owned.SeenUnownedUsers, m.owned.PendingUsersAt[want.ExternalID]) {
			return c, "", true
		}
		if m.opts.Adopt == AdoptExternalID || m.opts.Adopt == AdoptName {
			return c, "external_id", false
		}
	}
	if m.opts.Adopt == AdoptName {
		if c := m.userByName[strings.ToLower(want.UserName)]; c != nil && !m.userOwned(c.ID) && !matched[c.ID] && (c.ExternalID == "" || !m.sourceUsers[c.ExternalID]) {
			return c, "userName", false
		}
	}
	return nil, "", false
}

func (m *matcher) planGroups(p *Plan, desired scim.Snapshot, users *userResolution) {
	matched := make(map[string]bool, len(desired.Groups))
	type match struct {
		t       *scim.TargetGroup
		adopted string
		claim   bool
	}
	matches := make([]match, len(desired.Groups))
	for i, want := range desired.Groups {
		if id, ok := m.ownedGroupByExt[want.ExternalID]; ok {
			if t := m.groupByID[id]; t != nil {
				matches[i] = match{t: t}
				matched[id] = true
			}
		}
	}
	for i, want := range desired.Groups {
		if matches[i].t != nil {
			continue
		}
		if t, adopted, claim := m.matchGroup(want, matched); t != nil {
			matches[i] = match{t, adopted, claim}
			matched[t.ID] = true
		}
	}
	skipped := m.skippedGroups
	deleted := map[string]bool{}
	for id, ext := range m.owned.Groups {
		t, exists := m.groupByID[id]
		if !exists {
			p.Forget = append(p.Forget, Claim{Kind: scim.KindGroup, ExternalID: ext, ID: id})
			continue
		}
		if matched[id] || skipped[ext] {
			continue
		}
		if m.opts.Policy == PolicySync {
			p.DeleteGroups = append(p.DeleteGroups, Ref{ID: id, ExternalID: ext, Name: t.DisplayName})
			deleted[id] = true
		}
	}
	// Groups the tool before scimbridge left behind (see Options.AdoptUnmatched) are deleted.
	if m.adoptUnmatched() {
		for i := range m.current.Groups {
			t := &m.current.Groups[i]
			if t.ExternalID == "" || m.groupOwned(t.ID) || matched[t.ID] || m.sourceGroups[t.ExternalID] {
				continue
			}
			matched[t.ID], deleted[t.ID] = true, true
			p.DeleteGroups = append(p.DeleteGroups, Ref{ID: t.ID, ExternalID: t.ExternalID, Name: t.DisplayName, Adopted: AdoptedUnmatched})
		}
	}
	// held tells who holds a displayName that group self wants: a matched group (renamed away in
	// this run, or not), or a reason the name is not free; both empty when it is free or freed by
	// a deletion in this run (apply deletes groups before it renames or creates them).
	held := func(name, self string) (string, string) {
		c := m.groupByName[strings.ToLower(name)]
		switch {
		case c == nil || c.ID == self || deleted[c.ID]:
			return "", ""
		case matched[c.ID]:
			return c.ID, ""
		case m.groupOwned(c.ID):
			return "", "displayName is held by another group of this sync"
		default:
			return "", "displayName exists in the target and is not owned by scimbridge"
		}
	}
	var names []rename
	idx := map[string]int{}
	renameOf := map[int]int{}
	for i, want := range desired.Groups {
		mt := matches[i]
		if mt.t != nil && (m.opts.Policy != PolicyCreateOnly || mt.adopted != "") && want.DisplayName != mt.t.DisplayName {
			idx[mt.t.ID], renameOf[i] = len(names), len(names)
			names = append(names, rename{ext: want.ExternalID, to: want.DisplayName, self: mt.t.ID, active: true})
		}
	}
	resolveRenames(names, idx, "group", held, func(name string) bool { return m.groupByName[strings.ToLower(name)] != nil })
	claimed := map[string]bool{}
	skippedUsers := m.skippedUsers
	for i, want := range desired.Groups {
		mt := matches[i]
		if mt.t == nil {
			var c *scim.TargetGroup
			for _, cand := range m.groupByExternal[want.ExternalID] {
				if !m.groupOwned(cand.ID) && !matched[cand.ID] {
					c = cand
					break
				}
			}
			if c != nil {
				m.clash(p, Clash{Kind: scim.KindGroup, ExternalID: want.ExternalID, Field: "externalId", TargetID: c.ID, TargetExternalID: c.ExternalID, TargetName: c.DisplayName, Adopt: AdoptExternalID})
				continue
			}
			if holder, reason := held(want.DisplayName, ""); holder != "" || reason != "" {
				if c := m.groupByName[strings.ToLower(want.DisplayName)]; c != nil && !m.groupOwned(c.ID) && !matched[c.ID] {
					m.clash(p, Clash{Kind: scim.KindGroup, ExternalID: want.ExternalID, Field: "displayName", TargetID: c.ID, TargetExternalID: c.ExternalID, TargetName: c.DisplayName,
						Adopt: m.nameAdopt(c.ExternalID, m.sourceGroups)})
					continue
				}
				if j, ok := idx[holder]; reason == "" && ok && names[j].reason == "" {
					reason = "" // the holder is renamed away in this run, before the creates
				} else {
					if reason == "" {
						reason = "displayName is held by another group of this sync that keeps it in this run"
					}
					p.Problems = append(p.Problems, scim.Problem{Kind: scim.KindGroup, ID: want.ExternalID, Field: "displayName", Reason: reason, Dropped: true})
					continue
				}
			}
			g := want
			g.Members = slices.DeleteFunc(slices.Clone(want.Members), func(ext string) bool { return users.blocked[ext] })
			p.CreateGroups = append(p.CreateGroups, g)
			continue
		}
		t := mt.t
		if mt.claim {
			claimed[want.ExternalID] = true
			p.Claims = append(p.Claims, Claim{Kind: scim.KindGroup, ExternalID: want.ExternalID, ID: t.ID})
		}
		if m.opts.Policy != PolicyCreateOnly || mt.adopted != "" {
			to := want.DisplayName
			var rn rename
			if j, ok := renameOf[i]; ok {
				rn = names[j]
			}
			if rn.active && rn.reason != "" {
				p.Problems = append(p.Problems, scim.Problem{Kind: scim.KindGroup, ID: want.ExternalID, Field: "displayName", Reason: "cannot rename to " + q(to) + ": " + rn.reason})
				to = t.DisplayName
			}
			extChanged := t.ExternalID != want.ExternalID
			switch {
			case to != t.DisplayName || extChanged:
				u := GroupUpdate{ID: t.ID, ExternalID: want.ExternalID, From: t.DisplayName, To: to, SetExternalID: extChanged, Adopted: mt.adopted}
				if rn.active && rn.reason == "" {
					u.TempName = rn.temp
					if rn.after >= 0 {
						u.After = names[rn.after].ext
					}
				}
				p.UpdateGroups = append(p.UpdateGroups, u)
			case mt.adopted != "":
				p.Claims = append(p.Claims, Claim{Kind: scim.KindGroup, ExternalID: want.ExternalID, ID: t.ID, Adopted: mt.adopted, Name: t.DisplayName})
			}
		}
		ref := Ref{ID: t.ID, ExternalID: want.ExternalID, Name: want.DisplayName}
		mc := m.diffMembers(ref, t.Members, want.Members, users, skippedUsers)
		if m.opts.Policy == PolicyCreateOnly {
			mc.Remove = nil
		}
		if len(mc.Add) > 0 || len(mc.Remove) > 0 {
			p.Members = append(p.Members, mc)
		}
	}
	for ext := range m.owned.PendingGroups {
		if !claimed[ext] {
			p.ClearPending = append(p.ClearPending, Claim{Kind: scim.KindGroup, ExternalID: ext})
		}
	}
	for _, g := range m.current.Groups {
		if !m.groupOwned(g.ID) && !matched[g.ID] {
			p.UnmanagedGroups++
		}
	}
}

func (m *matcher) matchGroup(want scim.Group, matched map[string]bool) (t *scim.TargetGroup, adopted string, claim bool) {
	for _, c := range m.groupByExternal[want.ExternalID] {
		if m.groupOwned(c.ID) || matched[c.ID] {
			continue
		}
		if m.owned.PendingGroups[want.ExternalID] && claimable(c.ID, c.Created, m.owned.SeenUnownedGroups, m.owned.PendingGroupsAt[want.ExternalID]) {
			return c, "", true
		}
		if m.opts.Adopt == AdoptExternalID || m.opts.Adopt == AdoptName {
			return c, "external_id", false
		}
	}
	if m.opts.Adopt == AdoptName {
		if c := m.groupByName[strings.ToLower(want.DisplayName)]; c != nil && !m.groupOwned(c.ID) && !matched[c.ID] && (c.ExternalID == "" || !m.sourceGroups[c.ExternalID]) {
			return c, "displayName", false
		}
	}
	return nil, "", false
}

// rename is one object's change of name in a plan, and how it is ordered.
type rename struct {
	ext, to, self string
	active        bool   // the name changes
	reason        string // why it cannot be made; "" when it can
	holder        string // target id of the matched object that holds the name now
	after         int    // index of the rename that must go first; -1 for none
	temp          string // temporary name that breaks a cycle
}

// resolveRenames decides for each rename whether it can be made and in what order; idx maps the
// target id of each renamed object to its index in rs. held returns the target id of the
// matched object holding a name, or why the name is not free.
// A rename onto a name that a matched object gives up in this run goes after that object's
// rename; a cycle of such renames is broken at its member with the smallest externalId, which is
// first renamed to a temporary name. taken tells whether a name exists in the target.
func resolveRenames(rs []rename, idx map[string]int, what string, held func(name, self string) (string, string), taken func(string) bool) {
	for i := range rs {
		rs[i].after = -1
		if rs[i].active {
			rs[i].holder, rs[i].reason = held(rs[i].to, rs[i].self)
		}
	}
	// A name held by a matched object that keeps it (or whose own rename cannot be made) is not
	// free; this spreads along chains.
	for changed := true; changed; {
		changed = false
		for i := range rs {
			r := &rs[i]
			if !r.active || r.reason != "" || r.holder == "" {
				continue
			}
			if j, ok := idx[r.holder]; !ok || !rs[j].active || rs[j].reason != "" {
				r.reason = "is held by another " + what + " of this sync that keeps it in this run"
				changed = true
			}
		}
	}
	for i := range rs {
		if r := &rs[i]; r.active && r.reason == "" && r.holder != "" {
			r.after = idx[r.holder]
		}
	}
	// Each rename waits for at most one other, and at most one waits for it: the waits form
	// chains and cycles.
	seen := make([]int8, len(rs)) // 0 not yet, 1 on the path being followed, 2 done
	for i := range rs {
		if seen[i] != 0 || rs[i].after < 0 {
			continue
		}
		var path []int
		j := i
		for j >= 0 && seen[j] == 0 {
			seen[j] = 1
			path = append(path, j)
			j = rs[j].after
		}
		if j >= 0 && seen[j] == 1 {
			cycle := path[slices.Index(path, j):]
			b := slices.MinFunc(cycle, func(x, y int) int { return strings.Compare(rs[x].ext, rs[y].ext) })
			rs[b].temp = tempName(rs[b].ext, taken)
			for _, k := range cycle {
				if rs[k].after == b {
					rs[k].after = -1 // the temporary rename frees b's name first
				}
			}
		}
		for _, k := range path {
			seen[k] = 2
		}
	}
}

// tempName is the temporary name of a rename that breaks a cycle: "scimbridge-swap-" and 16 hex
// digits of the SHA-256 of the externalId, with "-2", "-3", ... when the target holds it already.
func tempName(ext string, taken func(string) bool) string {
	sum := sha256.Sum256([]byte(ext))
	base := "scimbridge-swap-" + hex.EncodeToString(sum[:8])
	name := base
	for n := 2; taken(name); n++ {
		name = base + "-" + strconv.Itoa(n)
	}
	return name
}

// diffMembers compares a matched group's target members (target user ids) with the desired
// members (user externalIds). Members that are skipped source records are left as they are;
// members deleted by this plan leave the group with their deletion, which costs no request.
// Both sides are walked sorted, without maps: this runs for every membership of the directory.
func (m *matcher) diffMembers(group Ref, current []string, want []string, users *userResolution, skippedUsers map[string]bool) MemberChange {
	mc := MemberChange{Group: group}
	wantIDs := make([]string, 0, len(want))
	for _, ext := range want {
		if users.blocked[ext] {
			continue
		}
		if id, exists := users.targetID[ext]; exists {
			wantIDs = append(wantIDs, id)
		} else {
			mc.Add = append(mc.Add, Ref{ExternalID: ext, Name: ext}) // created in this run
		}
	}
	slices.Sort(wantIDs)
	if !slices.IsSorted(current) {
		current = slices.Sorted(slices.Values(current))
	}
	i, j := 0, 0
	for i < len(wantIDs) || j < len(current) {
		switch {
		case j == len(current) || (i < len(wantIDs) && wantIDs[i] < current[j]):
			id := wantIDs[i]
			ext := users.extByTargetID[id]
			mc.Add = append(mc.Add, Ref{ID: id, ExternalID: ext, Name: m.userName(id, ext)})
			i++
		case i == len(wantIDs) || current[j] < wantIDs[i]:
			id := current[j]
			j++
			if users.deleted[id] || users.untouchable[id] {
				continue
			}
			ext := users.extByTargetID[id]
			if skippedUsers[ext] {
				continue
			}
			mc.Remove = append(mc.Remove, Ref{ID: id, ExternalID: ext, Name: m.userName(id, ext)})
		default:
			i++
			j++
		}
	}
	return mc
}

func (m *matcher) userName(id, ext string) string {
	if u := m.userByID[id]; u != nil {
		return u.UserName
	}
	return ext
}

func (p *Plan) sort() {
	byExt := func(a, b Ref) int { return cmp.Or(cmp.Compare(a.ExternalID, b.ExternalID), cmp.Compare(a.ID, b.ID)) }
	slices.SortFunc(p.CreateUsers, func(a, b scim.User) int { return cmp.Compare(a.ExternalID, b.ExternalID) })
	slices.SortFunc(p.UpdateUsers, func(a, b UserUpdate) int { return cmp.Compare(a.User.ExternalID, b.User.ExternalID) })
	slices.SortFunc(p.DisableUsers, byExt)
	slices.SortFunc(p.DeleteUsers, byExt)
	slices.SortFunc(p.CreateGroups, func(a, b scim.Group) int { return cmp.Compare(a.ExternalID, b.ExternalID) })
	slices.SortFunc(p.UpdateGroups, func(a, b GroupUpdate) int { return cmp.Compare(a.ExternalID, b.ExternalID) })
	slices.SortFunc(p.DeleteGroups, byExt)
	for i := range p.Members {
		slices.SortFunc(p.Members[i].Add, byExt)
		slices.SortFunc(p.Members[i].Remove, byExt)
	}
	slices.SortFunc(p.Members, func(a, b MemberChange) int { return byExt(a.Group, b.Group) })
	byClaim := func(a, b Claim) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ExternalID, b.ExternalID), cmp.Compare(a.ID, b.ID))
	}
	slices.SortFunc(p.Claims, byClaim)
	slices.SortFunc(p.Forget, byClaim)
	slices.SortFunc(p.ClearPending, byClaim)
	slices.SortFunc(p.Clashes, func(a, b Clash) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ExternalID, b.ExternalID))
	})
	slices.SortStableFunc(p.Problems, func(a, b scim.Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Field, b.Field))
	})
}
