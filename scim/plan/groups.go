package plan

import (
	"slices"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

func (m *matcher) planGroups(p *Plan, desired scim.Snapshot, users *userResolution) {
	matched := make(map[string]bool, len(desired.Groups))
	type match struct {
		t       *scim.TargetGroup
		adopted string
		claim   bool
	}
	matches := make([]match, len(desired.Groups))
	for i, want := range desired.Groups {
		if id, ok := m.ownedGroupByExt[want.ExternalID]; ok {
			if t := m.groupByID[id]; t != nil {
				matches[i] = match{t: t}
				matched[id] = true
			}
		}
	}
	for i, want := range desired.Groups {
		if matches[i].t != nil {
			continue
		}
		if t, adopted, claim := m.matchGroup(want, matched); t != nil {
			matches[i] = match{t, adopted, claim}
			matched[t.ID] = true
		}
	}
	skipped := m.skippedGroups
	deleted := map[string]bool{}
	for id, ext := range m.owned.Groups {
		t, exists := m.groupByID[id]
		if !exists {
			p.Forget = append(p.Forget, Claim{Kind: scim.KindGroup, ExternalID: ext, ID: id})
			continue
		}
		if matched[id] || skipped[ext] {
			continue
		}
		if m.opts.Policy.Deprovisions() {
			p.DeleteGroups = append(p.DeleteGroups, Ref{ID: id, ExternalID: ext, Name: t.DisplayName})
			deleted[id] = true
		}
	}
	// Groups the tool before scimbridge left behind (see Options.AdoptUnmatched) are deleted.
	if m.adoptUnmatched() {
		for i := range m.current.Groups {
			t := &m.current.Groups[i]
			if t.ExternalID == "" || m.groupOwned(t.ID) || matched[t.ID] || m.sourceGroups[t.ExternalID] {
				continue
			}
			matched[t.ID], deleted[t.ID] = true, true
			p.DeleteGroups = append(p.DeleteGroups, Ref{ID: t.ID, ExternalID: t.ExternalID, Name: t.DisplayName, Adopted: AdoptedUnmatched})
		}
	}
	// held tells who holds a displayName that group self wants: a matched group (renamed away in
	// this run, or not), or a reason the name is not free; both empty when it is free or freed by
	// a deletion in this run (apply deletes groups before it renames or creates them).
	held := func(name, self string) (string, string) {
		c := m.groupByName[strings.ToLower(name)]
		switch {
		case c == nil || c.ID == self || deleted[c.ID]:
			return "", ""
		case matched[c.ID]:
			return c.ID, ""
		case m.groupOwned(c.ID):
			return "", "displayName is held by another group of this sync"
		default:
			return "", "displayName exists in the target and is not owned by scimbridge"
		}
	}
	var names []rename
	idx := map[string]int{}
	renameOf := map[int]int{}
	for i, want := range desired.Groups {
		mt := matches[i]
		if mt.t != nil && m.mayUpdate(mt.adopted) && want.DisplayName != mt.t.DisplayName {
			idx[mt.t.ID], renameOf[i] = len(names), len(names)
			names = append(names, rename{ext: want.ExternalID, to: want.DisplayName, self: mt.t.ID, active: true})
		}
	}
	resolveRenames(names, idx, "group", held, func(name string) bool { return m.groupByName[strings.ToLower(name)] != nil })
	claimed := map[string]bool{}
	skippedUsers := m.skippedUsers
	for i, want := range desired.Groups {
		mt := matches[i]
		if mt.t == nil {
			var c *scim.TargetGroup
			for _, cand := range m.groupByExternal[want.ExternalID] {
				if !m.groupOwned(cand.ID) && !matched[cand.ID] {
					c = cand
					break
				}
			}
			if c != nil {
				m.clash(p, Clash{Kind: scim.KindGroup, ExternalID: want.ExternalID, Field: "externalId", TargetID: c.ID, TargetExternalID: c.ExternalID, TargetName: c.DisplayName, Adopt: AdoptExternalID})
				continue
			}
			if holder, reason := held(want.DisplayName, ""); holder != "" || reason != "" {
				if c := m.groupByName[strings.ToLower(want.DisplayName)]; c != nil && !m.groupOwned(c.ID) && !matched[c.ID] {
					m.clash(p, Clash{Kind: scim.KindGroup, ExternalID: want.ExternalID, Field: "displayName", TargetID: c.ID, TargetExternalID: c.ExternalID, TargetName: c.DisplayName,
						Adopt: m.nameAdopt(c.ExternalID, m.sourceGroups)})
					continue
				}
				if j, ok := idx[holder]; reason == "" && ok && names[j].reason == "" {
					reason = "" // the holder is renamed away in this run, before the creates
				} else {
					if reason == "" {
						reason = "displayName is held by another group of this sync that keeps it in this run"
					}
					p.Problems = append(p.Problems, scim.Problem{Kind: scim.KindGroup, ID: want.ExternalID, Field: "displayName", Reason: reason, Dropped: true})
					continue
				}
			}
			g := want
			g.Members = slices.DeleteFunc(slices.Clone(want.Members), func(ext string) bool { return users.blocked[ext] })
			p.CreateGroups = append(p.CreateGroups, g)
			continue
		}
		t := mt.t
		if mt.claim {
			claimed[want.ExternalID] = true
			p.Claims = append(p.Claims, Claim{Kind: scim.KindGroup, ExternalID: want.ExternalID, ID: t.ID})
		}
		if m.mayUpdate(mt.adopted) {
			to := want.DisplayName
			var rn rename
			if j, ok := renameOf[i]; ok {
				rn = names[j]
			}
			if rn.active && rn.reason != "" {
				p.Problems = append(p.Problems, scim.Problem{Kind: scim.KindGroup, ID: want.ExternalID, Field: "displayName", Reason: "cannot rename to " + q(to) + ": " + rn.reason})
				to = t.DisplayName
			}
			extChanged := t.ExternalID != want.ExternalID
			switch {
			case to != t.DisplayName || extChanged:
				u := GroupUpdate{ID: t.ID, ExternalID: want.ExternalID, From: t.DisplayName, To: to, SetExternalID: extChanged, Adopted: mt.adopted}
				if rn.active && rn.reason == "" {
					u.TempName = rn.temp
					if rn.after >= 0 {
						u.After = names[rn.after].ext
					}
				}
				p.UpdateGroups = append(p.UpdateGroups, u)
			case mt.adopted != "":
				p.Claims = append(p.Claims, Claim{Kind: scim.KindGroup, ExternalID: want.ExternalID, ID: t.ID, Adopted: mt.adopted, Name: t.DisplayName})
			}
		}
		ref := Ref{ID: t.ID, ExternalID: want.ExternalID, Name: want.DisplayName}
		mc := m.diffMembers(ref, t.Members, want.Members, users, skippedUsers)
		if !m.opts.Policy.AllowsRemove() {
			mc.Remove = nil
		}
		if len(mc.Add) > 0 || len(mc.Remove) > 0 {
			p.Members = append(p.Members, mc)
		}
	}
	for ext := range m.owned.PendingGroups {
		if !claimed[ext] {
			p.ClearPending = append(p.ClearPending, Claim{Kind: scim.KindGroup, ExternalID: ext})
		}
	}
	for _, g := range m.current.Groups {
		if !m.groupOwned(g.ID) && !matched[g.ID] {
			p.UnmanagedGroups++
		}
	}
}

func (m *matcher) matchGroup(want scim.Group, matched map[string]bool) (t *scim.TargetGroup, adopted string, claim bool) {
	for _, c := range m.groupByExternal[want.ExternalID] {
		if m.groupOwned(c.ID) || matched[c.ID] {
			continue
		}
		if m.owned.PendingGroups[want.ExternalID] && claimable(c.ID, c.Created, m.owned.SeenUnownedGroups, m.owned.PendingGroupsAt[want.ExternalID]) {
			return c, "", true
		}
		if m.opts.Adopt.byExternalID() {
			return c, "external_id", false
		}
	}
	if m.opts.Adopt.byName() {
		if c := m.groupByName[strings.ToLower(want.DisplayName)]; c != nil && !m.groupOwned(c.ID) && !matched[c.ID] && (c.ExternalID == "" || !m.sourceGroups[c.ExternalID]) {
			return c, "displayName", false
		}
	}
	return nil, "", false
}
