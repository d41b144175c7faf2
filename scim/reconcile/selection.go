package reconcile

import (
	"slices"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
)

// Selection names the objects of a targeted sync by their source ids (externalIds). A run with a
// selection plans as a full one would (from the slice of the state its selection can touch, when
// it trusts the state store: slice.go), then keeps only the changes that touch the selection:
//
//   - a named user is created, updated, disabled or deleted as the plan says, and its
//     memberships are added or removed in every existing group;
//   - a named group is created, renamed or deleted, and all of its memberships are made to match
//     the source; users it needs that do not exist in the target yet are created with it;
//   - nothing outside the selection is created, changed or deleted, and the state store's record
//     of other objects is left as it was.
//
// A named user's membership in a group that does not exist yet arrives with the group's create,
// in a run that names the group or in a full run.
type Selection struct {
	// Users are source ids of users.
	Users []string `json:"users,omitempty"`
	// Groups are source ids of groups.
	Groups []string `json:"groups,omitempty"`
}

// Empty reports whether the selection names nothing (a full sync).
func (s Selection) Empty() bool { return len(s.Users) == 0 && len(s.Groups) == 0 }

// Merge returns the union of two selections, sorted and without duplicates.
func (s Selection) Merge(o Selection) Selection {
	return Selection{Users: union(s.Users, o.Users), Groups: union(s.Groups, o.Groups)}
}

// String renders the selection for logs and the run history, such as "users a, b; groups g".
func (s Selection) String() string {
	var parts []string
	if len(s.Users) > 0 {
		parts = append(parts, "users "+strings.Join(s.Users, ", "))
	}
	if len(s.Groups) > 0 {
		parts = append(parts, "groups "+strings.Join(s.Groups, ", "))
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, "; ")
}

func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for _, v := range slices.Concat(a, b) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// scope is a selection as sets, for filtering a plan and the state refresh.
type scope struct {
	users, groups map[string]bool
	// newMembers are users to create because a selected group needs them.
	newMembers map[string]bool
}

func newScope(s Selection) *scope {
	return &scope{users: setOf(s.Users), groups: setOf(s.Groups), newMembers: map[string]bool{}}
}

// user reports whether a user's own record is in scope.
func (sc *scope) user(ext string) bool {
	return sc == nil || sc.users[ext] || sc.newMembers[ext]
}

// group reports whether a group's own record and all its memberships are in scope.
func (sc *scope) group(ext string) bool { return sc == nil || sc.groups[ext] }

// membership reports whether one membership is in scope.
func (sc *scope) membership(group, user string) bool {
	return sc == nil || sc.groups[group] || (user != "" && sc.users[user])
}

// filter returns a copy of p that keeps only the changes in scope. Counters describing the
// whole source and target (desired, owned, unmanaged) are kept as they are, so that the guards
// measure a targeted run against the same totals as a full one.
func (sc *scope) filter(p *plan.Plan) *plan.Plan {
	out := &plan.Plan{
		UnmanagedUsers: p.UnmanagedUsers, UnmanagedGroups: p.UnmanagedGroups,
		OwnedUsers: p.OwnedUsers, OwnedGroups: p.OwnedGroups,
		UserIDs:      p.UserIDs,
		DesiredUsers: p.DesiredUsers, DesiredGroups: p.DesiredGroups,
		TargetNotRead: p.TargetNotRead,
	}
	// Users a selected new group needs are created with it; its members that exist already are
	// not in scope (their records were not written, so the state store must not say they were).
	creating := make(map[string]bool, len(p.CreateUsers))
	for _, u := range p.CreateUsers {
		creating[u.ExternalID] = true
	}
	for _, g := range p.CreateGroups {
		if sc.groups[g.ExternalID] {
			for _, m := range g.Members {
				if creating[m] {
					sc.newMembers[m] = true
				}
			}
		}
	}
	for _, m := range p.Members {
		if sc.groups[m.Group.ExternalID] {
			for _, r := range m.Add {
				if r.ID == "" {
					sc.newMembers[r.ExternalID] = true
				}
			}
		}
	}
	c := &out.Changes
	for _, u := range p.CreateUsers {
		if sc.user(u.ExternalID) {
			c.CreateUsers = append(c.CreateUsers, u)
		}
	}
	for _, u := range p.UpdateUsers {
		if sc.users[u.User.ExternalID] {
			c.UpdateUsers = append(c.UpdateUsers, u)
		}
	}
	c.DisableUsers = keepRefs(p.DisableUsers, sc.users)
	c.DeleteUsers = keepRefs(p.DeleteUsers, sc.users)
	for _, g := range p.CreateGroups {
		if sc.groups[g.ExternalID] {
			c.CreateGroups = append(c.CreateGroups, g)
		}
	}
	for _, g := range p.UpdateGroups {
		if sc.groups[g.ExternalID] {
			c.UpdateGroups = append(c.UpdateGroups, g)
		}
	}
	c.DeleteGroups = keepRefs(p.DeleteGroups, sc.groups)
	for _, m := range p.Members {
		if sc.groups[m.Group.ExternalID] {
			c.Members = append(c.Members, m)
			continue
		}
		k := plan.MemberChange{Group: m.Group, Add: keepRefs(m.Add, sc.users), Remove: keepRefs(m.Remove, sc.users)}
		if len(k.Add)+len(k.Remove) > 0 {
			c.Members = append(c.Members, k)
		}
	}
	for _, cl := range p.Claims {
		if sc.inScope(cl.Kind, cl.ExternalID) {
			c.Claims = append(c.Claims, cl)
		}
	}
	for _, f := range p.Forget {
		if sc.inScope(f.Kind, f.ExternalID) {
			c.Forget = append(c.Forget, f)
		}
	}
	for _, cl := range p.ClearPending {
		if sc.inScope(cl.Kind, cl.ExternalID) {
			c.ClearPending = append(c.ClearPending, cl)
		}
	}
	for _, pr := range p.Problems {
		if sc.inScope(pr.Kind, pr.ID) {
			out.Problems = append(out.Problems, pr)
		}
	}
	for _, cl := range p.Clashes {
		if sc.inScope(cl.Kind, cl.ExternalID) {
			out.Clashes = append(out.Clashes, cl)
		}
	}
	return out
}

func (sc *scope) inScope(kind, ext string) bool {
	if kind == scim.KindGroup {
		return sc.group(ext)
	}
	return sc.user(ext)
}

func keepRefs(refs []plan.Ref, keep map[string]bool) []plan.Ref {
	var out []plan.Ref
	for _, r := range refs {
		if r.ExternalID != "" && keep[r.ExternalID] {
			out = append(out, r)
		}
	}
	return out
}

// missing returns the selected ids that neither the source nor the state store knows.
func (sc *scope) missing(desired scim.Snapshot, k *known) []string {
	inSource := map[string]bool{}
	for _, u := range desired.Users {
		inSource["user/"+u.ExternalID] = true
	}
	for _, g := range desired.Groups {
		inSource["group/"+g.ExternalID] = true
	}
	for _, p := range desired.Skipped {
		inSource[p.Kind+"/"+p.ID] = true
	}
	var out []string
	for u := range sc.users {
		if _, owned := k.users[u]; !owned && !inSource["user/"+u] {
			out = append(out, "user "+u)
		}
	}
	for g := range sc.groups {
		if _, owned := k.groups[g]; !owned && !inSource["group/"+g] {
			out = append(out, "group "+g)
		}
	}
	slices.Sort(out)
	return out
}
