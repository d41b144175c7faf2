package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/state"
)

// known is what the state store says at the start of a run: the objects scimbridge owns, as it
// last wrote them, their memberships, and the creates left unconfirmed.
type known struct {
	users     map[string]state.Object // by externalId
	groups    map[string]state.Object
	userData  map[string]scim.User // decoded users, by externalId; moved out by trustedState
	groupData map[string]scim.Group
	// trusted holds the users trustedState built (managers as target ids) and where each one is,
	// once userData has been moved into it.
	trusted       []scim.TargetUser
	trustedAt     map[string]int
	byTarget      map[string]string   // target id -> externalId, built on first use
	members       map[string][]string // group externalId -> user externalIds
	pendingUsers  map[string]bool
	pendingGroups map[string]bool
	// pendingUsersAt and pendingGroupsAt say when each pending create was recorded.
	pendingUsersAt  map[string]time.Time
	pendingGroupsAt map[string]time.Time
	// unowned is what the last full read saw of the objects scimbridge does not own.
	unowned []state.Unowned
	// related, when set, keeps out of trustedState the unowned objects a selective run's slice
	// cannot run into (see slice.go).
	related func(state.Unowned) bool
}

// part names the slice of the state store a selective run loads (see slice.go); nil is all of it.
type part struct {
	// users and groups are the owned objects to load, by externalId.
	users, groups []string
	// The memberships loaded are those of selGroups with the users in keep, and those of
	// selUsers in any group.
	selUsers, selGroups []string
	keep                map[string]bool
}

// loadKnown loads what the state store records, or the part of it that pt names.
func loadKnown(ctx context.Context, st state.Store, pt *part) (*known, error) {
	k, err := loadPending(ctx, st)
	if err != nil {
		return nil, err
	}
	if err := k.loadOwned(ctx, st, pt, nil); err != nil {
		return nil, err
	}
	return k, nil
}

// loadPending loads the creates left unconfirmed and the unowned objects of the last full read:
// what a run needs to decide whether it reads the target.
func loadPending(ctx context.Context, st state.Store) (*known, error) {
	k := &known{}
	var err error
	if k.pendingUsersAt, err = st.PendingTimes(ctx, state.KindUser); err != nil {
		return nil, fmt.Errorf("reconcile: load pending users: %w", err)
	}
	if k.pendingGroupsAt, err = st.PendingTimes(ctx, state.KindGroup); err != nil {
		return nil, fmt.Errorf("reconcile: load pending groups: %w", err)
	}
	k.pendingUsers, k.pendingGroups = keys(k.pendingUsersAt), keys(k.pendingGroupsAt)
	if k.unowned, err = st.ListUnowned(ctx); err != nil {
		return nil, fmt.Errorf("reconcile: load unowned objects: %w", err)
	}
	return k, nil
}

// loadOwned loads the owned objects and their memberships, or the part of them that pt names.
// A selective run passes the part's memberships its slice already read (memberships); nil
// reads them (the refresh after the apply, when they may have changed).
func (k *known) loadOwned(ctx context.Context, st state.Store, pt *part, memberships map[string][]string) error {
	k.users, k.groups = map[string]state.Object{}, map[string]state.Object{}
	k.userData, k.groupData = map[string]scim.User{}, map[string]scim.Group{}
	load := func(kind state.Kind, ids []string) ([]state.Object, error) {
		if pt == nil {
			return st.Objects(ctx, kind)
		}
		return st.ObjectsByID(ctx, kind, ids)
	}
	var userIDs, groupIDs []string
	if pt != nil {
		userIDs, groupIDs = pt.users, pt.groups
	}
	users, err := load(state.KindUser, userIDs)
	if err != nil {
		return fmt.Errorf("reconcile: load owned users: %w", err)
	}
	if err := k.addUsers(users); err != nil {
		return err
	}
	if pt != nil {
		// The managers the loaded users were written with: trustedState names them by target id.
		var managers []string
		for _, u := range k.userData {
			if m := u.Enterprise.Manager; m != "" {
				if _, ok := k.users[m]; !ok {
					managers = append(managers, m)
				}
			}
		}
		if len(managers) > 0 {
			more, err := st.ObjectsByID(ctx, state.KindUser, union(managers, nil))
			if err != nil {
				return fmt.Errorf("reconcile: load owned users: %w", err)
			}
			if err := k.addUsers(more); err != nil {
				return err
			}
		}
	}
	groups, err := load(state.KindGroup, groupIDs)
	if err != nil {
		return fmt.Errorf("reconcile: load owned groups: %w", err)
	}
	for _, o := range groups {
		g, err := o.Group()
		if err != nil {
			return fmt.Errorf("reconcile: owned group %q: %w", o.ExternalID, err)
		}
		o.Data = nil
		k.groups[o.ExternalID] = o
		k.groupData[o.ExternalID] = g
	}
	switch {
	case pt == nil:
		k.members, err = st.Members(ctx)
	case memberships != nil:
		k.members = memberships
	default:
		k.members, err = pt.members(ctx, st)
	}
	if err != nil {
		return fmt.Errorf("reconcile: load memberships: %w", err)
	}
	return nil
}

func (k *known) addUsers(users []state.Object) error {
	for _, o := range users {
		u, err := o.User()
		if err != nil {
			return fmt.Errorf("reconcile: owned user %q: %w", o.ExternalID, err)
		}
		o.Data = nil // decoded below; the JSON is not kept twice
		k.users[o.ExternalID] = o
		k.userData[o.ExternalID] = u
	}
	return nil
}

// members loads every member of the selected groups and the selected users' memberships.
func (pt *part) members(ctx context.Context, st state.Store) (map[string][]string, error) {
	of, err := st.MembersOf(ctx, pt.selGroups)
	if err != nil {
		return nil, err
	}
	in, err := st.GroupsOf(ctx, pt.selUsers)
	if err != nil {
		return nil, err
	}
	return joinMemberships(of, in, pt.keep), nil
}

// joinMemberships is the slice's memberships: of the selected groups' members (of) those in
// keep, and the selected users' memberships (in) in the other groups. It reuses of.
func joinMemberships(of, in map[string][]string, keep map[string]bool) map[string][]string {
	for g, us := range of {
		of[g] = keepIn(us, keep)
	}
	for g, us := range in {
		if _, selected := of[g]; !selected {
			of[g] = us
		}
	}
	return of
}

func keys(m map[string]time.Time) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// owned returns the ownership the plan needs.
func (k *known) owned() plan.Owned {
	o := plan.Owned{
		Users:             make(map[string]string, len(k.users)),
		Groups:            make(map[string]string, len(k.groups)),
		PendingUsers:      k.pendingUsers,
		PendingGroups:     k.pendingGroups,
		PendingUsersAt:    k.pendingUsersAt,
		PendingGroupsAt:   k.pendingGroupsAt,
		SeenUnownedUsers:  map[string]bool{},
		SeenUnownedGroups: map[string]bool{},
	}
	for _, u := range k.unowned {
		if u.Kind == state.KindUser {
			o.SeenUnownedUsers[u.TargetID] = true
		} else {
			o.SeenUnownedGroups[u.TargetID] = true
		}
	}
	for ext, obj := range k.users {
		o.Users[obj.TargetID] = ext
	}
	for ext, obj := range k.groups {
		o.Groups[obj.TargetID] = ext
	}
	return o
}

// trustedState is the target as scimbridge last wrote it: its owned objects, plus the unowned
// objects the last full read saw (id, externalId and name only), so that a trusted run reports
// the clashes a full read reports and never plans a create that would run into one. A run that
// trusts it makes no read request at all. The decoded users move into it rather than being
// copied (a large directory would otherwise hold them twice); lastWritten still finds them.
func (k *known) trustedState() scim.TargetState {
	var s scim.TargetState
	s.Users = make([]scim.TargetUser, 0, len(k.users))
	for ext, obj := range k.users {
		u := k.userData[ext]
		if m := u.Enterprise.Manager; m != "" {
			u.Enterprise.Manager = k.users[m].TargetID // "" when the manager is not ours
		}
		s.Users = append(s.Users, scim.TargetUser{ID: obj.TargetID, User: u})
	}
	k.userData = nil
	s.Groups = make([]scim.TargetGroup, 0, len(k.groups))
	for ext, obj := range k.groups {
		g := k.groupData[ext]
		members := make([]string, 0, len(k.members[ext]))
		for _, m := range k.members[ext] {
			if u, ok := k.users[m]; ok {
				members = append(members, u.TargetID)
			}
		}
		slices.Sort(members)
		s.Groups = append(s.Groups, scim.TargetGroup{ID: obj.TargetID, ExternalID: ext, DisplayName: g.DisplayName, Members: members})
	}
	slices.SortFunc(s.Users, func(a, b scim.TargetUser) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Groups, func(a, b scim.TargetGroup) int { return strings.Compare(a.ID, b.ID) })
	k.trusted = s.Users
	k.trustedAt = make(map[string]int, len(s.Users))
	for i, u := range s.Users {
		k.trustedAt[k.extOf(u.ID)] = i
	}
	for _, u := range k.unowned {
		if k.related != nil && !k.related(u) {
			continue
		}
		if u.Kind == state.KindUser {
			s.Users = append(s.Users, scim.TargetUser{ID: u.TargetID, User: scim.User{ExternalID: u.ExternalID, UserName: u.Name, Active: true}})
		} else {
			s.Groups = append(s.Groups, scim.TargetGroup{ID: u.TargetID, ExternalID: u.ExternalID, DisplayName: u.Name})
		}
	}
	return s
}

// extOf returns the externalId of an owned user's target id.
func (k *known) extOf(targetID string) string {
	if k.byTarget == nil {
		k.byTarget = make(map[string]string, len(k.users))
		for ext, o := range k.users {
			k.byTarget[o.TargetID] = ext
		}
	}
	return k.byTarget[targetID]
}

// lastWritten returns an owned user as scimbridge last wrote it, manager by externalId.
func (k *known) lastWritten(ext string) scim.User {
	if k.userData != nil {
		return k.userData[ext]
	}
	i, ok := k.trustedAt[ext]
	if !ok {
		return scim.User{}
	}
	u := k.trusted[i].User
	if m := u.Enterprise.Manager; m != "" {
		u.Enterprise.Manager = k.extOf(m)
	}
	return u
}
