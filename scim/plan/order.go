package plan

import "strings"

// UserWaves orders a plan's user updates for the applier. An update is late when its manager is
// created in this run (created holds the externalIds of the users the plan creates), or when it
// waits (After) for a late one; late updates are sent after the creates. Within early and late,
// wave k holds the updates that wait for one in wave k-1; the updates of one wave may be sent
// concurrently. Temporary renames (TempName) go before every wave.
//
// deferred holds the lower-cased userNames that late updates give up: a create that takes one
// of them is sent after the late updates.
func UserWaves(updates []UserUpdate, created map[string]bool) (early, late [][]UserUpdate, deferred map[string]bool) {
	byExt := make(map[string]int, len(updates))
	for i, u := range updates {
		byExt[u.User.ExternalID] = i
	}
	depth := make([]int, len(updates))
	isLate := make([]bool, len(updates))
	for i := range depth {
		depth[i] = -1
	}
	var walk func(i, guard int) (int, bool)
	walk = func(i, guard int) (int, bool) {
		if depth[i] >= 0 {
			return depth[i], isLate[i]
		}
		u := updates[i]
		d, l := 0, created[u.User.Enterprise.Manager]
		if j, ok := byExt[u.After]; ok && u.After != "" && guard < len(updates) {
			pd, pl := walk(j, guard+1)
			d, l = pd+1, l || pl
		}
		depth[i], isLate[i] = d, l
		return d, l
	}
	deferred = map[string]bool{}
	for i, u := range updates {
		d, l := walk(i, 0)
		waves := &early
		if l {
			waves = &late
			if from := u.RenamedFrom(); from != "" {
				deferred[strings.ToLower(from)] = true
			}
		}
		for len(*waves) <= d {
			*waves = append(*waves, nil)
		}
		(*waves)[d] = append((*waves)[d], u)
	}
	// A late update's depth counted early ancestors too; drop the waves left empty.
	late = compact(late)
	early = compact(early)
	return early, late, deferred
}

func compact[T any](waves [][]T) [][]T {
	out := waves[:0]
	for _, w := range waves {
		if len(w) > 0 {
			out = append(out, w)
		}
	}
	return out
}

// RenamedFrom returns the userName the update gives up, or "" when it keeps its userName.
func (u UserUpdate) RenamedFrom() string {
	for _, f := range u.Fields {
		if f.Name == "userName" {
			return f.From
		}
	}
	return ""
}

// GroupWaves orders the group updates that take part in a rename chain or cycle (those with After
// or TempName set, and those another waits for) or give up a displayName that a new group takes
// (created holds the lower-cased displayNames of the groups the plan creates): wave k holds the
// renames that wait for one in wave k-1. These renames are sent on their own, before the group
// creates; every other update is returned in rest (the applier may fold it into the group's
// first membership change).
func GroupWaves(updates []GroupUpdate, created map[string]bool) (waves [][]GroupUpdate, rest []GroupUpdate) {
	waitedFor := map[string]bool{}
	for _, g := range updates {
		if g.After != "" {
			waitedFor[g.After] = true
		}
	}
	byExt := make(map[string]int, len(updates))
	for i, g := range updates {
		byExt[g.ExternalID] = i
	}
	depth := map[string]int{}
	var walk func(g GroupUpdate, guard int) int
	walk = func(g GroupUpdate, guard int) int {
		if d, ok := depth[g.ExternalID]; ok {
			return d
		}
		d := 0
		if j, ok := byExt[g.After]; ok && g.After != "" && guard < len(updates) {
			d = walk(updates[j], guard+1) + 1
		}
		depth[g.ExternalID] = d
		return d
	}
	for _, g := range updates {
		freesName := g.From != g.To && created[strings.ToLower(g.From)]
		if g.After == "" && g.TempName == "" && !waitedFor[g.ExternalID] && !freesName {
			rest = append(rest, g)
			continue
		}
		d := walk(g, 0)
		for len(waves) <= d {
			waves = append(waves, nil)
		}
		waves[d] = append(waves[d], g)
	}
	return waves, rest
}
