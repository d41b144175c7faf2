package plan

import (
	"cmp"
	"slices"

	"github.com/scimbridge/scimbridge/scim"
)

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
