package reconcile

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/state"
)

// A selective run (a change-feed run, or a sync naming users and groups) that trusts the state
// store plans only the slice of the directory its selection can touch, so that its cost follows
// the change rather than the directory: loading every owned object and membership and planning
// them all costs seconds at 100,000 users, for a plan that the selection then cuts down to a few
// changes.
//
// The slice holds:
//   - the selected users and groups;
//   - every member a selected group gains or loses (a selected group's memberships are all made
//     to match, and a new one brings its new members); the members it keeps, on both sides,
//     plan nothing and stay out;
//   - every group a selected user is a member of, in the source or in the state store, with only
//     the selected users as members on both sides (a selected user's memberships are made to
//     match in every group, and nothing else of those groups is in scope);
//   - the managers of the users above (the plan names a manager by its target id), and the
//     managers they were last written with (loadOwned);
//   - the owned users and groups that hold, in the state store, a name one of the above takes in
//     the source, followed along chains of renames (addNameHolders);
//   - the unowned objects of the last full read whose externalId or name is one of the slice's
//     (the only ones a slice record can clash with).
//
// Planning the slice gives, for the selection, the changes that planning everything and then
// keeping the selection's gives (Selection, scope.filter): the records in scope are the same on
// both sides, and so are their memberships as far as the scope lets them change. The guards see
// the whole source's and the state store's totals. Two cases go back to the whole plan: a run
// that reads the target (pending creates, the full reconcile interval), and a slice whose plan
// would adopt or claim an object (adoption weighs the whole source).
type slice struct {
	desired scim.Snapshot
	part    part
	// memberships are the part's memberships as the slice read them, for the plan's load.
	memberships map[string][]string
	// totals of the whole source and the state store, for the guards and the plan's counters.
	desiredUsers, desiredGroups, ownedUsers, ownedGroups int
}

// sliceFor works out the slice of a selection.
func sliceFor(ctx context.Context, st state.Store, desired scim.Snapshot, sel Selection) (*slice, error) {
	selUsers, selGroups := setOf(sel.Users), setOf(sel.Groups)
	in, err := st.GroupsOf(ctx, sel.Users)
	if err != nil {
		return nil, fmt.Errorf("reconcile: load the selected users' memberships: %w", err)
	}
	of, err := st.MembersOf(ctx, sel.Groups)
	if err != nil {
		return nil, fmt.Errorf("reconcile: load the selected groups' members: %w", err)
	}
	// members are the users whose memberships the slice plans: the selected users, and the
	// members a selected group gains or loses. The members a selected group keeps are left out
	// on both sides (they plan no change), so that one move in a group of 100,000 does not load
	// 100,000 users.
	members := setOf(sel.Users)
	groups := setOf(sel.Groups)
	for g := range in {
		groups[g] = true
	}
	for _, g := range desired.Groups {
		if selGroups[g.ExternalID] {
			for _, m := range symmetricDifference(g.Members, of[g.ExternalID]) {
				members[m] = true
			}
			continue
		}
		for _, m := range g.Members {
			if selUsers[m] {
				groups[g.ExternalID] = true
				break
			}
		}
	}
	// The users of the slice: the members above and the managers they are given.
	users := maps.Clone(members)
	for _, u := range desired.Users {
		if m := u.Enterprise.Manager; m != "" && members[u.ExternalID] {
			users[m] = true
		}
	}

	if err := addNameHolders(ctx, st, desired, users, groups); err != nil {
		return nil, err
	}

	s := &slice{
		desiredUsers: len(desired.Users), desiredGroups: len(desired.Groups),
		part: part{selUsers: sel.Users, selGroups: sel.Groups, keep: members},
	}
	for _, u := range desired.Users {
		if users[u.ExternalID] {
			s.desired.Users = append(s.desired.Users, u)
		}
	}
	for _, g := range desired.Groups {
		switch {
		case selGroups[g.ExternalID]:
			g.Members = keepIn(g.Members, members)
		case groups[g.ExternalID]:
			g.Members = keepIn(g.Members, selUsers)
		default:
			continue
		}
		s.desired.Groups = append(s.desired.Groups, g)
	}
	for _, p := range desired.Skipped {
		if (p.Kind == scim.KindGroup && groups[p.ID]) || (p.Kind != scim.KindGroup && users[p.ID]) {
			s.desired.Skipped = append(s.desired.Skipped, p)
		}
	}
	s.part.users, s.part.groups = slices.Sorted(maps.Keys(users)), slices.Sorted(maps.Keys(groups))
	s.memberships = joinMemberships(of, in, members)
	stats, err := st.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile: count owned objects: %w", err)
	}
	s.ownedUsers, s.ownedGroups = stats.Users, stats.Groups
	return s, nil
}

// addNameHolders adds to the slice the owned users and groups that hold, as the state store
// records them, a name that a record of the slice has in the source: the plan orders a rename or
// a create after the rename that frees its name, or refuses it while another owned object keeps
// the name, so it needs them and their source records. Those bring their own names, until no
// new holder turns up (a chain of renames is followed to its end).
func addNameHolders(ctx context.Context, st state.Store, desired scim.Snapshot, users, groups map[string]bool) error {
	userAt := make(map[string]int, len(desired.Users))
	for i, u := range desired.Users {
		userAt[u.ExternalID] = i
	}
	groupAt := make(map[string]int, len(desired.Groups))
	for i, g := range desired.Groups {
		groupAt[g.ExternalID] = i
	}
	follow := func(kind state.Kind, in map[string]bool, name func(ext string) (string, bool)) error {
		var names []string
		for ext := range in {
			if n, ok := name(ext); ok {
				names = append(names, strings.ToLower(n))
			}
		}
		for len(names) > 0 {
			holders, err := st.ObjectsByName(ctx, kind, union(names, nil))
			if err != nil {
				return fmt.Errorf("reconcile: look up the owned holders of %d names: %w", len(names), err)
			}
			names = names[:0]
			for _, o := range holders {
				if in[o.ExternalID] {
					continue
				}
				in[o.ExternalID] = true
				if n, ok := name(o.ExternalID); ok {
					names = append(names, strings.ToLower(n))
				}
			}
		}
		return nil
	}
	err := follow(state.KindUser, users, func(ext string) (string, bool) {
		i, ok := userAt[ext]
		if !ok {
			return "", false
		}
		return desired.Users[i].UserName, true
	})
	if err != nil {
		return err
	}
	return follow(state.KindGroup, groups, func(ext string) (string, bool) {
		i, ok := groupAt[ext]
		if !ok {
			return "", false
		}
		return desired.Groups[i].DisplayName, true
	})
}

// symmetricDifference returns the ids in exactly one of two sorted lists.
func symmetricDifference(a, b []string) []string {
	var out []string
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return out
}

// owned is the part of the state store the slice loads and the memberships it read; nil (all of
// it, read) for no slice.
func (s *slice) owned() (*part, map[string][]string) {
	if s == nil {
		return nil, nil
	}
	return &s.part, s.memberships
}

// related reports whether an unowned object can clash with a record of the slice: it carries
// the externalId or the name (case-insensitively, as the plan compares names) of one.
func (s *slice) related() func(state.Unowned) bool {
	ext := map[string]bool{}
	names := map[string]bool{}
	for _, u := range s.desired.Users {
		ext["user/"+u.ExternalID], names["user/"+strings.ToLower(u.UserName)] = true, true
	}
	for _, g := range s.desired.Groups {
		ext["group/"+g.ExternalID], names["group/"+strings.ToLower(g.DisplayName)] = true, true
	}
	return func(u state.Unowned) bool {
		kind := string(u.Kind)
		return (u.ExternalID != "" && ext[kind+"/"+u.ExternalID]) || names[kind+"/"+strings.ToLower(u.Name)]
	}
}

// totals puts the whole source's and state store's counts into a plan of the slice, so that
// the guards and the plan's text measure the run as they measure a full one.
func (s *slice) totals(p *plan.Plan, k *known) {
	p.DesiredUsers, p.DesiredGroups = s.desiredUsers, s.desiredGroups
	p.OwnedUsers, p.OwnedGroups = s.ownedUsers, s.ownedGroups
	p.UnmanagedUsers, p.UnmanagedGroups = 0, 0
	for _, u := range k.unowned {
		if u.Kind == state.KindUser {
			p.UnmanagedUsers++
		} else {
			p.UnmanagedGroups++
		}
	}
}

func setOf(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// keepIn returns the ids in keep (empty, not nil, when ids is not nil).
func keepIn(ids []string, keep map[string]bool) []string {
	out := ids[:0:0]
	for _, id := range ids {
		if keep[id] {
			out = append(out, id)
		}
	}
	return out
}
