package connectors

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/scimbridge/scimbridge/scim"
)

// scopeState is the decision about one entry.
type scopeState uint8

const (
	stateIn           scopeState = iota // in scope and mapped
	stateFailed                         // in scope or undecided, but could not be mapped: reported, dropped
	stateOutInclude                     // the include filter is false
	stateOutExclude                     // the exclude filter is true
	stateOutName                        // a group whose displayName matches neither names nor name_pattern
	stateOutNotMember                   // user_mode group_members, and the user is in no group in scope
	stateOutInactive                    // inactive_users exclude, and the user is inactive
)

var stateText = map[scopeState]string{
	stateIn:           "in scope",
	stateFailed:       "could not be mapped or scoped; reported as skipped, so its target object is left as it is",
	stateOutInclude:   "out of scope: the include filter is false",
	stateOutExclude:   "out of scope: the exclude filter is true",
	stateOutName:      "out of scope: the displayName matches neither scope.groups.names nor scope.groups.name_pattern",
	stateOutNotMember: "out of scope: user_mode is group_members and the user is in no group in scope",
	stateOutInactive:  "out of scope: the user is inactive and inactive_users is exclude",
}

// ref names a user (group false) or a group by index.
type ref struct {
	idx   int32
	group bool
}

// refIndex resolves references: an entry's ID, then any of its Keys; exactly first, then
// ignoring case. It is safe for concurrent use.
type refIndex struct {
	d         *Directory
	exact     map[string]ref
	lowerOnce sync.Once
	lower     map[string]ref // built on the first miss
}

func newRefIndex(d *Directory) *refIndex {
	x := &refIndex{d: d, exact: make(map[string]ref, 2*(len(d.Users)+len(d.Groups)))}
	x.fill(x.exact, func(s string) string { return s })
	return x
}

func (x *refIndex) fill(m map[string]ref, norm func(string) string) {
	add := func(k string, r ref) {
		if k = norm(k); k != "" {
			if _, dup := m[k]; !dup {
				m[k] = r
			}
		}
	}
	// IDs win over keys.
	for i := range x.d.Users {
		add(x.d.Users[i].ID, ref{idx: int32(i)})
	}
	for i := range x.d.Groups {
		add(x.d.Groups[i].ID, ref{idx: int32(i), group: true})
	}
	for i := range x.d.Users {
		for _, k := range x.d.Users[i].Keys {
			add(k, ref{idx: int32(i)})
		}
	}
	for i := range x.d.Groups {
		for _, k := range x.d.Groups[i].Keys {
			add(k, ref{idx: int32(i), group: true})
		}
	}
}

func (x *refIndex) resolve(s string) (ref, bool) {
	if r, ok := x.exact[s]; ok {
		return r, true
	}
	x.lowerOnce.Do(func() {
		x.lower = make(map[string]ref, len(x.exact))
		x.fill(x.lower, func(s string) string { return strings.ToLower(strings.TrimSpace(s)) })
	})
	r, ok := x.lower[strings.ToLower(strings.TrimSpace(s))]
	return r, ok
}

// parallel calls fn(worker, lo, hi) on at most maxWorkers slices of [0, n), each at least
// minChunk long, and waits for them.
func parallel(n, minChunk, maxWorkers int, fn func(w, lo, hi int)) {
	workers := max(1, min(maxWorkers, n/minChunk))
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := min(w*chunk, n), min((w+1)*chunk, n)
		wg.Go(func() { fn(w, lo, hi) })
	}
	wg.Wait()
}

// run is everything Apply works out, kept for Explain.
type run struct {
	users      []scim.User
	userState  []scopeState
	groups     []scim.Group
	groupState []scopeState
	problems   []scim.Problem
	snapshot   scim.Snapshot
}

// Apply turns a directory into the desired snapshot: it scopes groups and users, evaluates the
// mapping, resolves manager and member references, flattens nested groups and normalizes the
// result (scim.Normalize). An entry that cannot be mapped or scoped is reported in Skipped (source
// id, attribute, reason) and left out; the rest goes on. Member references that match nothing are
// reported; the group stays. Apply is safe for concurrent use and does not modify d.
func (m *Mapping) Apply(d *Directory) scim.Snapshot {
	return m.run(d).snapshot
}

func (m *Mapping) run(d *Directory) *run {
	r := &run{
		users:      make([]scim.User, len(d.Users)),
		userState:  make([]scopeState, len(d.Users)),
		groups:     make([]scim.Group, len(d.Groups)),
		groupState: make([]scopeState, len(d.Groups)),
	}
	idx := newRefIndex(d)
	ev := newEvaluator()
	sc := &m.scope

	// Groups: filters, then displayName, then the name selection.
	for i := range d.Groups {
		g := &d.Groups[i]
		ev.env.set(g)
		in, key, err := filter(ev, sc.groupInclude, sc.groupExclude)
		switch {
		case err != nil:
			r.fail(scim.KindGroup, g.ID, key, err)
			r.groupState[i] = stateFailed
			continue
		case !in:
			r.groupState[i] = outState(ev, sc.groupInclude)
			continue
		}
		name, err := m.mapGroupName(ev, g)
		if err != nil {
			r.fail(scim.KindGroup, g.ID, "displayName", err)
			r.groupState[i] = stateFailed
			continue
		}
		if !sc.nameInScope(name) {
			r.groupState[i] = stateOutName
			continue
		}
		r.groups[i] = scim.Group{ExternalID: g.ID, DisplayName: name}
	}

	// Members: resolve every group's references (in parallel), then flatten.
	directUsers := make([][]int32, len(d.Groups))
	subs := make([][]int32, len(d.Groups))
	unresolved := make([][]string, len(d.Groups))
	procs := runtime.GOMAXPROCS(0)
	parallel(len(d.Groups), 256, procs, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			for _, mref := range d.Groups[i].Members {
				x, ok := idx.resolve(mref)
				switch {
				case !ok:
					unresolved[i] = append(unresolved[i], mref)
				case x.group && x.idx != int32(i):
					subs[i] = append(subs[i], x.idx)
				case !x.group:
					directUsers[i] = append(directUsers[i], x.idx)
				}
			}
		}
	})
	for i, refs := range unresolved {
		if len(refs) > 0 && r.groupState[i] == stateIn {
			r.problems = append(r.problems, scim.Problem{Kind: scim.KindGroup, ID: d.Groups[i].ID, Field: "members",
				Reason: fmt.Sprintf("%d member reference(s) match no user or group and were left out (first: %q)", len(refs), refs[0])})
		}
	}
	flat := flatten(len(d.Users), directUsers, subs)

	// In group_members mode, a user is a candidate when a group in scope holds it. Members of a
	// group that failed count too, so that a broken group cannot deprovision its users.
	var member []bool
	if sc.mode == UserModeGroupMembers {
		member = make([]bool, len(d.Users))
		for i := range d.Groups {
			if st := r.groupState[i]; st == stateIn || st == stateFailed {
				for _, u := range flat[i] {
					member[u] = true
				}
			}
		}
	}

	// Users, in parallel: filters, membership, mapping.
	managers := make([]string, len(d.Users))
	failures := make([][]scim.Problem, procs)
	parallel(len(d.Users), 2048, procs, func(w, lo, hi int) {
		ev := ev
		if w > 0 {
			ev = newEvaluator()
		}
		for i := lo; i < hi; i++ {
			e := &d.Users[i]
			ev.env.set(e)
			in, key, err := filter(ev, sc.userInclude, sc.userExclude)
			switch {
			case err != nil:
				failures[w] = append(failures[w], failed(scim.KindUser, e.ID, key, err))
				r.userState[i] = stateFailed
				continue
			case !in:
				r.userState[i] = outState(ev, sc.userInclude)
				continue
			case member != nil && !member[i]:
				r.userState[i] = stateOutNotMember
				continue
			}
			u, mgr, field, err := m.mapUser(ev, e)
			if err != nil {
				failures[w] = append(failures[w], failed(scim.KindUser, e.ID, field, err))
				r.userState[i] = stateFailed
				continue
			}
			if !u.Active && sc.inactive == InactiveExclude {
				r.userState[i] = stateOutInactive
				continue
			}
			r.users[i], managers[i] = u, mgr
		}
	})
	for _, f := range failures {
		r.problems = append(r.problems, f...)
	}

	// Manager references resolve to the referenced user's ID.
	for i, mgr := range managers {
		if mgr == "" || r.userState[i] != stateIn {
			continue
		}
		x, ok := idx.resolve(mgr)
		if !ok || x.group {
			r.problems = append(r.problems, scim.Problem{Kind: scim.KindUser, ID: d.Users[i].ID, Field: "manager",
				Reason: fmt.Sprintf("manager reference %q matches no user; left unset", mgr)})
			continue
		}
		if int(x.idx) == i {
			r.problems = append(r.problems, scim.Problem{Kind: scim.KindUser, ID: d.Users[i].ID, Field: "manager",
				Reason: fmt.Sprintf("manager reference %q is the user itself; left unset", mgr)})
			continue
		}
		r.users[i].Enterprise.Manager = d.Users[x.idx].ID
	}

	// The snapshot: users in scope, groups in scope with the users in scope they hold. Users that
	// failed stay in the member lists; Normalize leaves those memberships as they are.
	snap := scim.Snapshot{Users: r.users[:0], Groups: make([]scim.Group, 0, len(d.Groups))}
	for i, st := range r.userState {
		if st == stateIn {
			snap.Users = append(snap.Users, r.users[i]) // in place: i >= len(snap.Users)
		}
	}
	r.users = nil
	for i, st := range r.groupState {
		if st != stateIn {
			continue
		}
		g := &r.groups[i]
		members := make([]string, 0, len(flat[i]))
		for _, u := range flat[i] {
			if st := r.userState[u]; st == stateIn || st == stateFailed {
				members = append(members, d.Users[u].ID)
			}
		}
		g.Members = members
		snap.Groups = append(snap.Groups, *g)
	}
	snap.Skipped = append(slices.Clone(d.Skipped), r.problems...)
	r.snapshot = scim.Normalize(snap)
	return r
}

// outState tells which filter put the entry ev is set to out of scope.
func outState(ev *evaluator, include *program) scopeState {
	if include != nil {
		if ok, err := include.runBool(ev); err == nil && !ok {
			return stateOutInclude
		}
	}
	return stateOutExclude
}

func failed(kind, id, field string, err error) scim.Problem {
	return scim.Problem{Kind: kind, ID: id, Field: field, Reason: err.Error(), Dropped: true}
}

func (r *run) fail(kind, id, field string, err error) {
	r.problems = append(r.problems, failed(kind, id, field, err))
}
