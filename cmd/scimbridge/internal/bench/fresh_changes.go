package bench

import (
	"fmt"
	"slices"
)

// Change kinds of the freshness bench.
const (
	KindJoiner = "joiner"
	KindLeaver = "leaver"
	KindRename = "rename"
	KindMove   = "move"
	KindNested = "nested"
)

// FreshKinds are the change kinds the freshness bench draws from, equally often.
var FreshKinds = []string{KindJoiner, KindLeaver, KindRename, KindMove, KindNested}

// FreshChange is one change the freshness bench makes to the generated directory, and what the
// target shows once it has arrived.
type FreshChange struct {
	Kind string
	// Desc names the change for logs ("rename u-0000042 to renamed.1.ada...").
	Desc string
	// User is the user's index; Group, From and Parent are group indexes (-1 when unused).
	User, Group, From, Parent int
	// UserName is the user's userName after the change.
	UserName string
}

// TargetView is the target as the freshness bench checks it: users by externalId, and each
// group's member users by the group's externalId (the users' externalIds).
type TargetView struct {
	Users   map[string]string          // externalId -> userName
	Members map[string]map[string]bool // group externalId -> member externalIds
}

// Arrived reports whether the target shows the change; ext maps a generated id to the
// externalId the source gives the entry.
func (c *FreshChange) Arrived(d *Directory, v TargetView, ext func(id string) string) bool {
	uid := ext(d.users[c.User].id)
	in := func(g int) bool { return v.Members[ext(d.groups[g].id)][uid] }
	switch c.Kind {
	case KindJoiner:
		return v.Users[uid] == c.UserName && in(c.Group)
	case KindLeaver:
		_, ok := v.Users[uid]
		return !ok
	case KindRename:
		return v.Users[uid] == c.UserName
	case KindMove:
		return in(c.Group) && !in(c.From)
	case KindNested:
		return in(c.Group) && in(c.Parent)
	}
	return false
}

// groupsOf returns the indexes of the groups user i is a direct member of.
func (d *Directory) groupsOf(i int) []int {
	var out []int
	for gi, g := range d.groups {
		if slices.Contains(g.members, i) {
			out = append(out, gi)
		}
	}
	return out
}

// reaches reports whether group g holds user i directly or through nested groups.
func (d *Directory) reaches(g, i int, seen map[int]bool) bool {
	if seen[g] {
		return false
	}
	seen[g] = true
	if slices.Contains(d.groups[g].members, i) {
		return true
	}
	for _, c := range d.groups[g].children {
		if d.reaches(c, i, seen) {
			return true
		}
	}
	return false
}

// randomAlive picks a living user that is in no pending change (busy).
func (d *Directory) randomAlive(busy map[int]bool) int {
	for {
		i := d.rng.IntN(len(d.users))
		if d.alive[i] && !busy[i] {
			return i
		}
	}
}

// FreshChange makes one random change of kind to the directory (seq numbers it) and returns it.
// Users named by a change not yet seen in the target (busy) are left alone, so that every
// change stays observable on its own.
func (d *Directory) FreshChange(kind string, seq int, busy map[int]bool) *FreshChange {
	c := &FreshChange{Kind: kind, Group: -1, From: -1, Parent: -1}
	switch kind {
	case KindJoiner:
		i := len(d.users)
		u := d.newUser(d.nextID)
		d.nextID++
		d.users = append(d.users, u)
		d.alive = append(d.alive, true)
		c.User, c.UserName, c.Group = i, u.email, d.rng.IntN(len(d.groups))
		d.groups[c.Group].members = append(d.groups[c.Group].members, i)
		c.Desc = fmt.Sprintf("joiner %s into %s", u.id, d.groups[c.Group].id)
	case KindLeaver:
		c.User = d.randomAlive(busy)
		d.alive[c.User] = false
		c.Desc = "leaver " + d.users[c.User].id
	case KindRename:
		c.User = d.randomAlive(busy)
		u := &d.users[c.User]
		u.email = fmt.Sprintf("renamed%d.%s", seq, u.email)
		c.UserName = u.email
		c.Desc = fmt.Sprintf("rename %s to %s", u.id, u.email)
	case KindMove:
		for {
			c.User = d.randomAlive(busy)
			if gs := d.groupsOf(c.User); len(gs) > 0 {
				c.From = gs[d.rng.IntN(len(gs))]
				break
			}
		}
		for c.Group = d.rng.IntN(len(d.groups)); ; c.Group = d.rng.IntN(len(d.groups)) {
			// The user must leave the old group's flattened members too: no other path to it.
			if c.Group != c.From && !d.reaches(c.Group, c.User, map[int]bool{}) && !d.nestedIn(c.From, c.Group) {
				break
			}
		}
		d.groups[c.From].members = slices.DeleteFunc(d.groups[c.From].members, func(m int) bool { return m == c.User })
		d.groups[c.Group].members = append(d.groups[c.Group].members, c.User)
		if d.reachesOther(c.From, c.User) {
			// Still a member of From through a nested group: move back and pick again.
			d.groups[c.Group].members = slices.DeleteFunc(d.groups[c.Group].members, func(m int) bool { return m == c.User })
			d.groups[c.From].members = append(d.groups[c.From].members, c.User)
			return d.FreshChange(kind, seq, busy)
		}
		c.Desc = fmt.Sprintf("move %s from %s to %s", d.users[c.User].id, d.groups[c.From].id, d.groups[c.Group].id)
	case KindNested:
		var parents []int
		for gi, g := range d.groups {
			if len(g.children) > 0 {
				parents = append(parents, gi)
			}
		}
		if len(parents) == 0 {
			return d.FreshChange(KindMove, seq, busy)
		}
		c.Parent = parents[d.rng.IntN(len(parents))]
		c.Group = d.groups[c.Parent].children[0]
		for {
			c.User = d.randomAlive(busy)
			if !d.reaches(c.Parent, c.User, map[int]bool{}) {
				break
			}
		}
		d.groups[c.Group].members = append(d.groups[c.Group].members, c.User)
		c.Desc = fmt.Sprintf("nested: %s into %s (inside %s)", d.users[c.User].id, d.groups[c.Group].id, d.groups[c.Parent].id)
	}
	return c
}

// nestedIn reports whether group g is (transitively) a child of group parent.
func (d *Directory) nestedIn(parent, g int) bool {
	seen := map[int]bool{}
	var walk func(p int) bool
	walk = func(p int) bool {
		if seen[p] {
			return false
		}
		seen[p] = true
		for _, c := range d.groups[p].children {
			if c == g || walk(c) {
				return true
			}
		}
		return false
	}
	return walk(parent)
}

// reachesOther reports whether group g still holds user i through one of its nested groups.
func (d *Directory) reachesOther(g, i int) bool {
	for _, c := range d.groups[g].children {
		if d.reaches(c, i, map[int]bool{}) {
			return true
		}
	}
	return false
}
