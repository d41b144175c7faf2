package plan

import (
	"slices"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

func (m *matcher) planGroups(p *Plan, desired scim.Snapshot, users *userResolution) {
	// Step 1: match each desired group to a target group.
	matches, matched, claimed := m.groups.matchAll(len(desired.Groups), func(i int) (string, string) {
		return desired.Groups[i].ExternalID, desired.Groups[i].DisplayName
	}, m.opts.Adopt)
	// Step 2: owned groups that match nothing are deleted (groups have no disable), and so are
	// the groups the tool before scimbridge left behind (see Options.AdoptUnmatched); owned groups
	// missing from the target are forgotten.
	deleted := map[string]bool{}
	m.groups.leavers(p, m.opts.Policy, matched, func(string) {}, func(id, ext string, t *scim.TargetGroup) {
		p.DeleteGroups = append(p.DeleteGroups, Ref{ID: id, ExternalID: ext, Name: t.DisplayName})
		deleted[id] = true
	})
	if m.adoptUnmatched() {
		m.groups.unmatched(matched, func(t *scim.TargetGroup) {
			deleted[t.ID] = true
			p.DeleteGroups = append(p.DeleteGroups, Ref{ID: t.ID, ExternalID: t.ExternalID, Name: t.DisplayName, Adopted: AdoptedUnmatched})
		})
	}
	// Step 3: renames, then creates (unless a clash leaves them out) and updates.
	// held tells who holds a displayName that group self wants: a matched group (renamed away in
	// this run, or not), or a reason the name is not free; both empty when it is free or freed by
	// a deletion in this run (apply deletes groups before it renames or creates them).
	held := func(name, self string) (string, string) {
		c := m.groups.byName[strings.ToLower(name)]
		switch {
		case c == nil || c.ID == self || deleted[c.ID]:
			return "", ""
		case matched[c.ID]:
			return c.ID, ""
		case m.groups.isOwned(c.ID):
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
	resolveRenames(names, idx, "group", held, func(name string) bool { return m.groups.byName[strings.ToLower(name)] != nil })
	skippedUsers := m.users.skipped
	for i, want := range desired.Groups {
		mt := matches[i]
		if mt.t == nil {
			if c := m.groups.unownedByExternal(want.ExternalID, matched); c != nil {
				m.clash(p, Clash{Kind: scim.KindGroup, ExternalID: want.ExternalID, Field: "externalId", TargetID: c.ID, TargetExternalID: c.ExternalID, TargetName: c.DisplayName, Adopt: AdoptExternalID})
				continue
			}
			if holder, reason := held(want.DisplayName, ""); holder != "" || reason != "" {
				if c := m.groups.byName[strings.ToLower(want.DisplayName)]; c != nil && !m.groups.isOwned(c.ID) && !matched[c.ID] {
					m.clash(p, Clash{Kind: scim.KindGroup, ExternalID: want.ExternalID, Field: "displayName", TargetID: c.ID, TargetExternalID: c.ExternalID, TargetName: c.DisplayName,
						Adopt: m.nameAdopt(c.ExternalID, m.groups.source)})
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
	// Step 4: clear the pending creates nothing claimed; count the groups left alone.
	p.UnmanagedGroups = m.groups.finish(p, matched, claimed)
}
