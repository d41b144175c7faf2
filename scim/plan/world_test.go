package plan

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scimbridge/scimbridge/scim"
)

func user(ext, name string) scim.User {
	return scim.User{ExternalID: ext, UserName: name, DisplayName: "D " + name, GivenName: "G", FamilyName: "F", Email: name + "@example.com", Active: true}
}

// world is a target with ownership, to which plans are applied the way the reconciler does.
type world struct {
	users  map[string]*scim.TargetUser
	groups map[string]*scim.TargetGroup
	owned  Owned
	nextID int
}

func newWorld() *world {
	return &world{users: map[string]*scim.TargetUser{}, groups: map[string]*scim.TargetGroup{},
		owned: Owned{Users: map[string]string{}, Groups: map[string]string{}, PendingUsers: map[string]bool{}, PendingGroups: map[string]bool{}}}
}

func (w *world) id(prefix string) string { w.nextID++; return fmt.Sprintf("%s-%04d", prefix, w.nextID) }

// addUser puts a user in the target; owned says whether scimbridge owns it.
func (w *world) addUser(u scim.User, owned bool) string {
	id := w.id("u")
	w.users[id] = &scim.TargetUser{ID: id, User: u}
	if owned {
		w.owned.Users[id] = u.ExternalID
	}
	return id
}

func (w *world) addGroup(ext, name string, owned bool, members ...string) string {
	id := w.id("g")
	w.groups[id] = &scim.TargetGroup{ID: id, ExternalID: ext, DisplayName: name, Members: members}
	if owned {
		w.owned.Groups[id] = ext
	}
	return id
}

func (w *world) state() scim.TargetState {
	var s scim.TargetState
	for _, u := range w.users {
		s.Users = append(s.Users, *u)
	}
	for _, g := range w.groups {
		g2 := *g
		g2.Members = slices.Sorted(slices.Values(g.Members))
		s.Groups = append(s.Groups, g2)
	}
	slices.SortFunc(s.Users, func(a, b scim.TargetUser) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Groups, func(a, b scim.TargetGroup) int { return strings.Compare(a.ID, b.ID) })
	return s
}

func (w *world) nameTaken(name, except string) bool {
	for id, u := range w.users {
		if id != except && strings.EqualFold(u.UserName, name) {
			return true
		}
	}
	return false
}

func (w *world) idOf(ext string) string {
	for id, e := range w.owned.Users {
		if e == ext {
			return id
		}
	}
	return ""
}

// apply carries out a plan in the reconciler's order, failing the test on any request the target
// would refuse.
func (w *world) apply(t *testing.T, p *Plan) {
	t.Helper()
	idOf := func(ext string) string {
		if id, ok := p.UserIDs[ext]; ok {
			return id
		}
		return w.idOf(ext)
	}
	for _, c := range p.Claims {
		if c.Kind == scim.KindUser {
			w.owned.Users[c.ID] = c.ExternalID
		} else {
			w.owned.Groups[c.ID] = c.ExternalID
		}
	}
	for _, c := range p.Forget {
		if c.Kind == scim.KindUser {
			delete(w.owned.Users, c.ID)
		} else {
			delete(w.owned.Groups, c.ID)
		}
	}
	created := map[string]bool{}
	for _, u := range p.CreateUsers {
		created[u.ExternalID] = true
	}
	update := func(u UserUpdate) {
		if w.nameTaken(u.User.UserName, u.ID) {
			t.Fatalf("update of %s: userName %q is taken", u.ID, u.User.UserName)
		}
		nu := u.User
		nu.Enterprise.Manager = idOf(nu.Enterprise.Manager)
		w.users[u.ID].User = nu
		w.owned.Users[u.ID] = u.User.ExternalID
	}
	for _, r := range p.DisableUsers {
		w.users[r.ID].Active = false
	}
	for _, r := range p.DeleteUsers {
		if _, ok := w.owned.Users[r.ID]; !ok {
			t.Fatalf("delete of unowned user %s", r.ID)
		}
		delete(w.users, r.ID)
		delete(w.owned.Users, r.ID)
		for _, g := range w.groups {
			g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == r.ID })
		}
	}
	for _, c := range p.ClearPending {
		if c.Kind == scim.KindUser {
			delete(w.owned.PendingUsers, c.ExternalID)
		} else {
			delete(w.owned.PendingGroups, c.ExternalID)
		}
	}
	// Temporary renames that break swaps go first, then renames in the order After gives.
	for _, u := range p.UpdateUsers {
		if u.TempName != "" {
			if w.nameTaken(u.TempName, u.ID) {
				t.Fatalf("temporary rename of %s: userName %q is taken", u.ID, u.TempName)
			}
			w.users[u.ID].UserName = u.TempName
		}
	}
	early, late, deferred := UserWaves(p.UpdateUsers, created)
	for _, wave := range early {
		for _, u := range wave {
			update(u)
		}
	}
	create := func(u scim.User) {
		if w.nameTaken(u.UserName, "") {
			t.Fatalf("create of %s: userName %q is taken", u.ExternalID, u.UserName)
		}
		id := w.id("u")
		w.users[id] = &scim.TargetUser{ID: id, User: u}
		w.owned.Users[id] = u.ExternalID
	}
	for _, u := range p.CreateUsers {
		if !deferred[strings.ToLower(u.UserName)] {
			create(u)
		}
	}
	for _, u := range p.CreateUsers { // managers once every user exists
		if id := w.idOf(u.ExternalID); id != "" {
			w.users[id].Enterprise.Manager = idOf(u.Enterprise.Manager)
		}
	}
	for _, wave := range late { // updates naming a manager created in this run
		for _, u := range wave {
			update(u)
		}
	}
	for _, u := range p.CreateUsers {
		if deferred[strings.ToLower(u.UserName)] {
			create(u)
			w.users[w.idOf(u.ExternalID)].Enterprise.Manager = idOf(u.Enterprise.Manager)
		}
	}
	for _, r := range p.DeleteGroups {
		if _, ok := w.owned.Groups[r.ID]; !ok {
			t.Fatalf("delete of unowned group %s", r.ID)
		}
		delete(w.groups, r.ID)
		delete(w.owned.Groups, r.ID)
	}
	for _, g := range p.UpdateGroups {
		if g.TempName != "" {
			if w.groupNameTaken(g.TempName) {
				t.Fatalf("temporary rename of %s: displayName %q is taken", g.ID, g.TempName)
			}
			w.groups[g.ID].DisplayName = g.TempName
		}
	}
	newNames := map[string]bool{}
	for _, g := range p.CreateGroups {
		newNames[strings.ToLower(g.DisplayName)] = true
	}
	waves, rest := GroupWaves(p.UpdateGroups, newNames)
	for _, g := range append(slices.Concat(waves...), rest...) {
		for id, o := range w.groups {
			if id != g.ID && strings.EqualFold(o.DisplayName, g.To) {
				t.Fatalf("rename of %s: displayName %q is taken", g.ID, g.To)
			}
		}
		w.groups[g.ID].DisplayName = g.To
		w.groups[g.ID].ExternalID = g.ExternalID
		w.owned.Groups[g.ID] = g.ExternalID
	}
	for _, g := range p.CreateGroups {
		for _, o := range w.groups {
			if strings.EqualFold(o.DisplayName, g.DisplayName) {
				t.Fatalf("create of group %s: displayName %q is taken", g.ExternalID, g.DisplayName)
			}
		}
		var members []string
		for _, ext := range g.Members {
			members = append(members, w.idOf(ext))
		}
		id := w.addGroup(g.ExternalID, g.DisplayName, true, members...)
		_ = id
	}
	for _, mc := range p.Members {
		g := w.groups[mc.Group.ID]
		if g == nil {
			t.Fatalf("member change for missing group %s", mc.Group.ID)
		}
		for _, a := range mc.Add {
			id := a.ID
			if id == "" {
				id = w.idOf(a.ExternalID)
			}
			if id == "" || slices.Contains(g.Members, id) {
				t.Fatalf("add of %+v to %s: unknown or already a member", a, mc.Group.ID)
			}
			g.Members = append(g.Members, id)
		}
		for _, r := range mc.Remove {
			if !slices.Contains(g.Members, r.ID) {
				t.Fatalf("remove of %s from %s: not a member", r.ID, mc.Group.ID)
			}
			g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == r.ID })
		}
	}
}

func compute(w *world, desired scim.Snapshot, opts Options) *Plan {
	return Compute(scim.Normalize(desired), w.state(), w.owned, opts)
}

func (w *world) groupNameTaken(name string) bool {
	for _, g := range w.groups {
		if strings.EqualFold(g.DisplayName, name) {
			return true
		}
	}
	return false
}

// unowned renders the unowned objects, each with its members for groups.
func (w *world) unowned() map[string]string {
	out := map[string]string{}
	for id, u := range w.users {
		if _, ok := w.owned.Users[id]; !ok {
			out[id] = fmt.Sprintf("%+v", u.User)
		}
	}
	for id, g := range w.groups {
		if _, ok := w.owned.Groups[id]; !ok {
			out[id] = fmt.Sprintf("%s %v", g.DisplayName, slices.Sorted(slices.Values(g.Members)))
		}
	}
	return out
}

// checkUnownedKept verifies that an unowned object is unchanged after a plan, or was taken over
// by a claim or an adoption the plan reported. A deleted owned user leaves unowned groups too.
func (w *world) checkUnownedKept(t *testing.T, before map[string]string, p *Plan) {
	t.Helper()
	takenOver := map[string]bool{}
	for _, c := range p.Claims {
		takenOver[c.ID] = true
	}
	for _, u := range p.UpdateUsers {
		if u.Adopted != "" {
			takenOver[u.ID] = true
		}
	}
	for _, g := range p.UpdateGroups {
		if g.Adopted != "" {
			takenOver[g.ID] = true
		}
	}
	deleted := map[string]bool{}
	for _, r := range p.DeleteUsers {
		deleted[r.ID] = true
	}
	after := w.unowned()
	for id, was := range before {
		now, still := after[id]
		switch {
		case !still && takenOver[id]:
		case !still:
			t.Fatalf("unowned object %s vanished or was taken over silently: %s", id, was)
		case now != was:
			if g := w.groups[id]; g != nil {
				for _, m := range strings.Fields(strings.Trim(was[strings.Index(was, "[")+1:], "]")) {
					if !deleted[m] && !slices.Contains(g.Members, m) {
						t.Fatalf("unowned group %s lost member %s", id, m)
					}
				}
				continue
			}
			t.Fatalf("unowned object %s changed:\n was %s\n now %s", id, was, now)
		}
	}
}

// checkHolds verifies that every desired record the plan did not report as a problem is in the
// target exactly.
func (w *world) checkHolds(t *testing.T, desired scim.Snapshot, p *Plan) {
	t.Helper()
	dropped := map[string]bool{}
	renamed := map[string]bool{}   // users whose rename was refused
	noManager := map[string]bool{} // users whose manager could not be written
	for _, pr := range p.Problems {
		if pr.Dropped {
			dropped[pr.Kind+"/"+pr.ID] = true
		} else if pr.Kind == scim.KindUser && pr.Field == "userName" {
			renamed[pr.ID] = true
		} else if pr.Kind == scim.KindUser && pr.Field == "manager" {
			noManager[pr.ID] = true
		}
	}
	for _, u := range desired.Users {
		if dropped["user/"+u.ExternalID] {
			continue
		}
		if noManager[u.ExternalID] {
			u.Enterprise.Manager = ""
		}
		if renamed[u.ExternalID] {
			u.UserName = w.users[w.idOf(u.ExternalID)].UserName
		}
		id := w.idOf(u.ExternalID)
		if id == "" {
			t.Fatalf("desired user %s missing", u.ExternalID)
		}
		got := w.users[id].User
		if got.Enterprise.Manager != "" {
			got.Enterprise.Manager = w.owned.Users[got.Enterprise.Manager]
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Fatalf("user %s (-want +got):\n%s", u.ExternalID, diff)
		}
	}
	for _, g := range desired.Groups {
		if dropped["group/"+g.ExternalID] {
			continue
		}
		var found *scim.TargetGroup
		for id, ext := range w.owned.Groups {
			if ext == g.ExternalID {
				found = w.groups[id]
			}
		}
		if found == nil {
			t.Fatalf("desired group %s missing", g.ExternalID)
		}
		var want, got []string
		for _, m := range g.Members {
			if !dropped["user/"+m] {
				want = append(want, m)
			}
		}
		for _, id := range found.Members {
			ext := w.owned.Users[id]
			if ext == "" {
				ext = w.users[id].ExternalID
			}
			if dropped["user/"+ext] {
				continue // a skipped source record keeps the memberships it had
			}
			got = append(got, w.owned.Users[id])
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })); diff != "" && !(len(want) == 0 && len(got) == 0) {
			t.Fatalf("group %s members (-want +got):\n%s", g.ExternalID, diff)
		}
	}
}

func text(p *Plan) string {
	var b bytes.Buffer
	_ = p.WriteText(&b, 100)
	return b.String()
}
