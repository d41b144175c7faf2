package plan

import (
	"strings"
	"time"

	"github.com/scimbridge/scimbridge/scim"
)

// objects is one kind's view (users or groups) of the target, the state store and the source:
// the indexes that the steps users and groups share need. Both kinds are planned in the same
// order, with these steps:
//
//  1. match: each desired record to the owned object with its externalId, then to an unowned one
//     that a pending create claims or an adopt mode takes (matchAll);
//  2. deprovision: owned objects that the target no longer has are forgotten, and owned objects
//     no desired record matched are deprovisioned, as the policy says (leavers), together with the
//     unowned objects AdoptUnmatched takes (unmatched);
//  3. create or update, with clashes and renames: per kind, in planUsers and planGroups, because
//     the kinds differ there (users: managers, every attribute, a name freed by a deletion;
//     groups: memberships);
//  4. clear the pending creates nothing claimed and count what is left alone (finish).
type objects[T scim.TargetUser | scim.TargetGroup] struct {
	kind string // scim.KindUser or scim.KindGroup
	// byNameField says how an adoption by name is recorded: "userName" or "displayName".
	byNameField string
	all         []T
	byID        map[string]*T
	byExternal  map[string][]*T
	byName      map[string]*T // by lower-cased name
	// owned maps the target ids scimbridge owns to the externalId it wrote; ownedByExt reverses it.
	owned       map[string]string
	ownedByExt  map[string]string
	pending     map[string]bool
	pendingAt   map[string]time.Time
	seenUnowned map[string]bool
	// source holds every id the source has, sent or skipped: adoption by name never takes an
	// object that stands for another source record.
	source map[string]bool
	// skipped are the source records left out as a whole: their target objects are left exactly
	// as they are.
	skipped map[string]bool
	// key gives a target object's id, externalId, name and creation time.
	key func(*T) (id, ext, name string, created time.Time)
}

func userKey(u *scim.TargetUser) (string, string, string, time.Time) {
	return u.ID, u.ExternalID, u.UserName, u.Created
}

func groupKey(g *scim.TargetGroup) (string, string, string, time.Time) {
	return g.ID, g.ExternalID, g.DisplayName, g.Created
}

func newObjects[T scim.TargetUser | scim.TargetGroup](kind, byNameField string, all []T, key func(*T) (string, string, string, time.Time),
	owned map[string]string, pending map[string]bool, pendingAt map[string]time.Time, seenUnowned map[string]bool) objects[T] {
	o := objects[T]{
		kind:        kind,
		byNameField: byNameField,
		all:         all,
		byID:        make(map[string]*T, len(all)),
		byExternal:  make(map[string][]*T, len(all)),
		byName:      make(map[string]*T, len(all)),
		owned:       owned,
		ownedByExt:  make(map[string]string, len(owned)),
		pending:     pending,
		pendingAt:   pendingAt,
		seenUnowned: seenUnowned,
		key:         key,
	}
	for i := range all {
		t := &all[i]
		id, ext, name, _ := key(t)
		o.byID[id] = t
		if ext != "" {
			o.byExternal[ext] = append(o.byExternal[ext], t)
		}
		o.byName[strings.ToLower(name)] = t
	}
	for id, ext := range owned {
		o.ownedByExt[ext] = id
	}
	return o
}

// setSource records the source's ids: the n records sent (id gives each one's) and those skipped.
func (o *objects[T]) setSource(n int, id func(i int) string, skipped map[string]bool) {
	o.skipped = skipped
	o.source = make(map[string]bool, n+len(skipped))
	for i := range n {
		o.source[id(i)] = true
	}
	for id := range skipped {
		o.source[id] = true
	}
}

func (o *objects[T]) isOwned(id string) bool { _, ok := o.owned[id]; return ok }

// match is the target object a desired record is, if any: adopted names how an unowned object
// was taken over; claim is set when ownership is recorded without a change (a pending create).
type match[T any] struct {
	t       *T
	adopted string
	claim   bool
}

// matchAll matches the n desired records (want gives each one's externalId and name): owned
// objects first, then claims and adoptions, so that no target object is matched twice. It returns
// the matches by desired index, the target ids matched, and the externalIds of the pending
// creates claimed.
func (o *objects[T]) matchAll(n int, want func(i int) (ext, name string), adopt Adopt) (matches []match[T], matched, claimed map[string]bool) {
	matched = make(map[string]bool, n)
	matches = make([]match[T], n)
	for i := range n {
		ext, _ := want(i)
		if id, ok := o.ownedByExt[ext]; ok {
			if t := o.byID[id]; t != nil {
				matches[i] = match[T]{t: t}
				matched[id] = true
			}
		}
	}
	claimed = map[string]bool{}
	for i := range n {
		if matches[i].t != nil {
			continue
		}
		ext, name := want(i)
		if mt := o.find(ext, name, matched, adopt); mt.t != nil {
			matches[i] = mt
			id, _, _, _ := o.key(mt.t)
			matched[id] = true
			if mt.claim {
				claimed[ext] = true
			}
		}
	}
	return matches, matched, claimed
}

// find finds the unowned target object a desired record is: claimed from a pending create, or
// adopted as the adopt mode allows.
func (o *objects[T]) find(ext, name string, matched map[string]bool, adopt Adopt) match[T] {
	for _, c := range o.byExternal[ext] {
		id, _, _, created := o.key(c)
		if o.isOwned(id) || matched[id] {
			continue // owned under another source id: not this one
		}
		if o.pending[ext] && claimable(id, created, o.seenUnowned, o.pendingAt[ext]) {
			return match[T]{t: c, claim: true}
		}
		if adopt.byExternalID() {
			return match[T]{t: c, adopted: "external_id"}
		}
	}
	if adopt.byName() {
		if c := o.byName[strings.ToLower(name)]; c != nil {
			id, cext, _, _ := o.key(c)
			if !o.isOwned(id) && !matched[id] && (cext == "" || !o.source[cext]) {
				return match[T]{t: c, adopted: o.byNameField}
			}
		}
	}
	return match[T]{}
}

// leavers forgets the owned objects the target no longer has (a desired one is created again),
// and hands the owned objects that no desired record matched to keep, when their source record
// was skipped (they are left exactly as they are), or else to deprovision, when the policy
// deprovisions.
func (o *objects[T]) leavers(p *Plan, policy Policy, matched map[string]bool, keep func(id string), deprovision func(id, ext string, t *T)) {
	for id, ext := range o.owned {
		t, exists := o.byID[id]
		if !exists {
			p.Forget = append(p.Forget, Claim{Kind: o.kind, ExternalID: ext, ID: id})
			continue
		}
		if matched[id] {
			continue
		}
		if o.skipped[ext] {
			keep(id)
			continue
		}
		if policy.Deprovisions() {
			deprovision(id, ext, t)
		}
	}
}

// unmatched hands each unowned object that carries an externalId no source record has to take
// (see Options.AdoptUnmatched), and marks it matched.
func (o *objects[T]) unmatched(matched map[string]bool, take func(t *T)) {
	for i := range o.all {
		t := &o.all[i]
		id, ext, _, _ := o.key(t)
		if ext == "" || o.isOwned(id) || matched[id] || o.source[ext] {
			continue
		}
		matched[id] = true
		take(t)
	}
}

// unownedByExternal returns the first object with this externalId that is neither owned nor
// matched in this plan.
func (o *objects[T]) unownedByExternal(ext string, matched map[string]bool) *T {
	for _, c := range o.byExternal[ext] {
		id, _, _, _ := o.key(c)
		if !o.isOwned(id) && !matched[id] {
			return c
		}
	}
	return nil
}

// finish clears the pending creates that nothing claimed and returns how many target objects
// scimbridge neither owns nor matched: left alone.
func (o *objects[T]) finish(p *Plan, matched, claimed map[string]bool) (unmanaged int) {
	for ext := range o.pending {
		if !claimed[ext] {
			p.ClearPending = append(p.ClearPending, Claim{Kind: o.kind, ExternalID: ext})
		}
	}
	for i := range o.all {
		id, _, _, _ := o.key(&o.all[i])
		if !o.isOwned(id) && !matched[id] {
			unmanaged++
		}
	}
	return unmanaged
}
