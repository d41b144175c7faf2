package plan

import (
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

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
	// Step 1: match each desired user to a target user.
	matches, matched, claimed := m.users.matchAll(len(desired.Users), func(i int) (string, string) {
		return desired.Users[i].ExternalID, desired.Users[i].UserName
	}, m.opts.Adopt)
	// Step 2: owned users that match nothing are deprovisioned (deleted or disabled); those of
	// skipped records are left as they are; owned users missing from the target are forgotten
	// (and created again if still desired).
	m.users.leavers(p, m.opts.Policy, matched, func(id string) { r.untouchable[id] = true }, func(id, ext string, t *scim.TargetUser) {
		ref := Ref{ID: id, ExternalID: ext, Name: t.UserName}
		if !m.opts.Deprovision.disables() {
			p.DeleteUsers = append(p.DeleteUsers, ref)
			r.deleted[id] = true
		} else if t.Active {
			p.DisableUsers = append(p.DisableUsers, ref)
		}
	})
	if m.adoptUnmatched() {
		m.users.unmatched(matched, func(t *scim.TargetUser) { m.deprovisionUnmatchedUser(p, r, t) })
	}
	// Step 3: desired users that match nothing are created, unless an unowned user holds their
	// externalId or userName. A create may take a userName that an owned user gives up in this
	// run (renamed away or deleted: apply orders those first).
	for i, want := range desired.Users {
		if matches[i].t != nil {
			continue
		}
		if c := m.users.unownedByExternal(want.ExternalID, matched); c != nil {
			m.clash(p, Clash{Kind: scim.KindUser, ExternalID: want.ExternalID, Field: "externalId", TargetID: c.ID, TargetExternalID: c.ExternalID, TargetName: c.UserName, Adopt: AdoptExternalID})
			r.blocked[want.ExternalID] = true
			continue
		}
		if clash := m.users.byName[strings.ToLower(want.UserName)]; clash != nil && !matched[clash.ID] && !r.deleted[clash.ID] {
			if m.users.isOwned(clash.ID) {
				p.Problems = append(p.Problems, scim.Problem{Kind: scim.KindUser, ID: want.ExternalID, Field: "userName",
					Reason: "userName is held by a deprovisioned user of this sync (" + m.owned.Users[clash.ID] + "); delete that user to free it", Dropped: true})
			} else {
				m.clash(p, Clash{Kind: scim.KindUser, ExternalID: want.ExternalID, Field: "userName", TargetID: clash.ID, TargetExternalID: clash.ExternalID, TargetName: clash.UserName,
					Adopt: m.nameAdopt(clash.ExternalID, m.users.source)})
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
		if mt.t == nil || r.blocked[want.ExternalID] || !m.mayUpdate(mt.adopted) {
			continue
		}
		if !strings.EqualFold(want.UserName, mt.t.UserName) {
			idx[mt.t.ID], renameOf[i] = len(names), len(names)
			names = append(names, rename{ext: want.ExternalID, to: want.UserName, self: mt.t.ID, active: true})
		}
	}
	resolveRenames(names, idx, "user", func(name, self string) (string, string) {
		c := m.users.byName[strings.ToLower(name)]
		switch {
		case c == nil || c.ID == self || r.deleted[c.ID]:
			return "", ""
		case matched[c.ID]:
			return c.ID, ""
		case m.users.isOwned(c.ID):
			return "", "is held by another user owned by scimbridge (" + m.owned.Users[c.ID] + ")"
		default:
			return "", "exists in the target and is not owned by scimbridge"
		}
	}, func(name string) bool { return m.users.byName[strings.ToLower(name)] != nil })
	// A create may take the userName of a matched user only when that user's rename gives it up.
	for i, want := range desired.Users {
		if matches[i].t != nil || r.blocked[want.ExternalID] {
			continue
		}
		if c := m.users.byName[strings.ToLower(want.UserName)]; c != nil && matched[c.ID] {
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
		if !m.mayUpdate(mt.adopted) {
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
	// Step 4: clear the pending creates nothing claimed; count the users left alone.
	p.UnmanagedUsers = m.users.finish(p, matched, claimed)
	return r
}

// AdoptedUnmatched marks the adoption of an object left behind by the tool before scimbridge
// (Options.AdoptUnmatched), taken over to be deprovisioned.
const AdoptedUnmatched = "unmatched externalId"

// deprovisionUnmatchedUser deletes or disables, as the deprovisioning mode says, an unowned user
// that carries an externalId no source record has (Options.AdoptUnmatched). A disable writes the
// user as the target holds it with active false, and records it as owned from then on; a user
// already inactive is only recorded.
func (m *matcher) deprovisionUnmatchedUser(p *Plan, r *userResolution, t *scim.TargetUser) {
	if !m.opts.Deprovision.disables() {
		p.DeleteUsers = append(p.DeleteUsers, Ref{ID: t.ID, ExternalID: t.ExternalID, Name: t.UserName, Adopted: AdoptedUnmatched})
		r.deleted[t.ID] = true
		return
	}
	if !t.Active {
		p.Claims = append(p.Claims, Claim{Kind: scim.KindUser, ExternalID: t.ExternalID, ID: t.ID, Adopted: AdoptedUnmatched, Name: t.UserName})
		return
	}
	u := t.User
	u.Active = false
	u.Enterprise.Manager = r.extByTargetID[t.Enterprise.Manager]
	p.UpdateUsers = append(p.UpdateUsers, UserUpdate{ID: t.ID, User: u, Fields: diffUser(t.User, u, r.extByTargetID), Adopted: AdoptedUnmatched})
}
