package reconcile

import (
	"errors"
	"fmt"
	"slices"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/state"
)

// tempRenameGroups renames the groups that break a rename cycle to their temporary names.
func (a *applier) tempRenameGroups() {
	var temps []plan.GroupUpdate
	for _, g := range a.p.UpdateGroups {
		if g.TempName != "" {
			temps = append(temps, g)
		}
	}
	a.each(len(temps), func(i int) {
		g := temps[i]
		name := g.TempName
		if err := a.r.cfg.Target.PatchGroup(a.rctx, g.ID, client.GroupPatch{DisplayName: &name}); err != nil {
			a.fail(scim.KindGroup, g.ExternalID, "rename to the temporary name "+name, err)
			return
		}
		a.rec.putGroup(g.ID, scim.Group{ExternalID: g.ExternalID, DisplayName: name})
	})
}

func (a *applier) deleteGroups() {
	a.each(len(a.p.DeleteGroups), func(i int) {
		r := a.p.DeleteGroups[i]
		err := a.r.cfg.Target.DeleteGroup(a.rctx, r.ID)
		a.progress(1)
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			a.fail(scim.KindGroup, r.ExternalID, "delete", err)
			return
		}
		a.rec.forget(scim.KindGroup, r.ExternalID)
		a.count(func(c *state.Counts) { c.Deleted++ })
	})
}

// renameGroups sends the group updates of groups without member changes; the others ride on the
// group's first membership PATCH.
func (a *applier) renameGroups(updates []plan.GroupUpdate) {
	withMembers := map[string]bool{}
	for _, m := range a.p.Members {
		withMembers[m.Group.ID] = true
	}
	var alone []plan.GroupUpdate
	for _, u := range updates {
		if !withMembers[u.ID] {
			alone = append(alone, u)
		}
	}
	a.sendGroupUpdates(alone)
}

// sendGroupUpdates sends group updates on their own, concurrently.
func (a *applier) sendGroupUpdates(updates []plan.GroupUpdate) {
	a.each(len(updates), func(i int) {
		u := updates[i]
		err := a.r.cfg.Target.PatchGroup(a.rctx, u.ID, groupUpdatePatch(u))
		a.progress(1)
		if err != nil {
			a.fail(scim.KindGroup, u.ExternalID, "update", err)
			return
		}
		a.groupUpdated(u)
	})
}

func groupUpdatePatch(u plan.GroupUpdate) client.GroupPatch {
	var p client.GroupPatch
	if u.From != u.To {
		p.DisplayName = &u.To
	}
	if u.SetExternalID || u.Adopted != "" {
		p.ExternalID = &u.ExternalID
	}
	return p
}

func (a *applier) groupUpdated(u plan.GroupUpdate) {
	a.rec.putGroup(u.ID, scim.Group{ExternalID: u.ExternalID, DisplayName: u.To})
	a.count(func(c *state.Counts) {
		if u.Adopted != "" {
			c.Adopted++
		}
		if u.From != u.To || u.SetExternalID {
			c.Updated++
		}
	})
}

func (a *applier) createGroups() error {
	if len(a.p.CreateGroups) == 0 {
		return nil
	}
	exts := make([]string, len(a.p.CreateGroups))
	for i, g := range a.p.CreateGroups {
		exts[i] = g.ExternalID
	}
	a.pendingAt = a.r.cfg.Now()
	if err := a.r.cfg.State.RecordPending(a.rctx, state.KindGroup, exts, a.pendingAt); err != nil {
		return fmt.Errorf("reconcile: record pending group creates: %w", err)
	}
	max := a.r.cfg.MaxMembersPerRequest
	a.each(len(a.p.CreateGroups), func(i int) {
		g := a.p.CreateGroups[i]
		ids, idExts := a.resolveMembers(g.ExternalID, g.Members)
		first, firstExt := ids[:min(max, len(ids))], idExts[:min(max, len(ids))]
		a.markSent(scim.KindGroup, g.ExternalID)
		id, err := a.r.cfg.Target.CreateGroup(a.rctx, scim.Group{ExternalID: g.ExternalID, DisplayName: g.DisplayName}, first)
		if errors.Is(err, client.ErrConflict) {
			id, err = a.resolveGroupConflict(g, first)
		}
		a.progress(1 + len(first))
		if errors.Is(err, errClash) {
			return
		}
		if err != nil {
			if refused(err) {
				a.rec.clearPending(scim.KindGroup, g.ExternalID)
			}
			a.fail(scim.KindGroup, g.ExternalID, "create", err)
			return
		}
		a.rec.putGroup(id, scim.Group{ExternalID: g.ExternalID, DisplayName: g.DisplayName})
		a.rec.addMembers(g.ExternalID, firstExt)
		a.count(func(c *state.Counts) { c.Created++; c.MemberAdds += len(first) })
		if rest := ids[len(first):]; len(rest) > 0 {
			a.mu.Lock()
			a.leftover = append(a.leftover, plan.MemberChange{Group: plan.Ref{ID: id, ExternalID: g.ExternalID, Name: g.DisplayName}, Add: refs(rest, idExts[len(first):])})
			a.mu.Unlock()
		}
	})
	a.clearUnsent(scim.KindGroup, exts)
	return nil
}

func refs(ids, exts []string) []plan.Ref {
	out := make([]plan.Ref, len(ids))
	for i := range ids {
		out[i] = plan.Ref{ID: ids[i], ExternalID: exts[i]}
	}
	return out
}

// resolveGroupConflict handles a 409 on a group create the way resolveUserConflict does for
// users: a group carrying our externalId that this create could have made is ours (its first
// members are then PATCHed in); any other group is left alone and the record left out.
func (a *applier) resolveGroupConflict(g scim.Group, first []string) (string, error) {
	found, err := a.r.cfg.Target.FindGroup(a.rctx, "externalId", g.ExternalID)
	if err != nil {
		return "", fmt.Errorf("look up after conflict: %w", err)
	}
	if found != nil && a.claimable(scim.KindGroup, found.ID, found.Created) {
		if len(first) > 0 {
			// The lost create may or may not have carried its members; adding a member twice is
			// harmless, so add them again.
			if err := a.r.cfg.Target.PatchGroup(a.rctx, found.ID, client.GroupPatch{Add: first}); err != nil {
				return "", fmt.Errorf("add members after conflict: %w", err)
			}
		}
		return found.ID, nil
	}
	c := plan.Clash{Kind: scim.KindGroup, ExternalID: g.ExternalID, Field: "externalId", Adopt: plan.AdoptExternalID}
	if found == nil {
		holder, err := a.r.cfg.Target.FindGroup(a.rctx, "displayName", g.DisplayName)
		if err != nil || holder == nil {
			a.clash(c, g.DisplayName, nil)
			return "", errClash
		}
		found = holder
		c.Field, c.Adopt = "displayName", plan.AdoptName
	}
	c.TargetID, c.TargetExternalID, c.TargetName = found.ID, found.ExternalID, found.DisplayName
	a.clash(c, found.DisplayName, &state.Unowned{Kind: state.KindGroup, TargetID: found.ID, ExternalID: found.ExternalID, Name: found.DisplayName})
	return "", errClash
}

// resolveMembers turns members named by externalId into target ids, dropping (and reporting)
// users whose create failed in this run.
func (a *applier) resolveMembers(groupExt string, exts []string) (ids, idExts []string) {
	for _, ext := range exts {
		if id := a.userID(ext); id != "" {
			ids = append(ids, id)
			idExts = append(idExts, ext)
			continue
		}
		a.mu.Lock()
		if !a.leftOut["user/"+ext] { // a clash is reported as such
			a.errs = append(a.errs, fmt.Sprintf("group %s: member %s not added: the user was not created in this run", groupExt, ext))
		}
		a.mu.Unlock()
	}
	return ids, idExts
}

// patchMembers sends the membership changes; folded lists the group updates that ride on a
// group's first membership PATCH.
func (a *applier) patchMembers(folded []plan.GroupUpdate) {
	max := a.r.cfg.MaxMembersPerRequest
	updates := map[string]*plan.GroupUpdate{}
	for i := range folded {
		updates[folded[i].ID] = &folded[i]
	}
	changes := append(slices.Clone(a.p.Members), a.leftover...)
	// A batch is a window of one change's operations (its adds, then its removes); the ids are
	// gathered only when the batch is sent, so a large initial sync never holds every PATCH at once.
	type batch struct {
		change, from, to int
		update           *plan.GroupUpdate // folded into the first batch of a group
	}
	var batches []batch
	for ci, mc := range changes {
		if a.failedGroup(mc.Group.ExternalID) {
			continue
		}
		n := len(mc.Add) + len(mc.Remove)
		for from := 0; from < n; from += max {
			b := batch{change: ci, from: from, to: min(from+max, n)}
			if from == 0 {
				b.update = updates[mc.Group.ID]
			}
			batches = append(batches, b)
		}
	}
	a.each(len(batches), func(i int) {
		b := batches[i]
		mc := changes[b.change]
		var p client.GroupPatch
		var addExt, remExt []string
		for k := b.from; k < b.to; k++ {
			if k >= len(mc.Add) {
				r := mc.Remove[k-len(mc.Add)]
				p.Remove, remExt = append(p.Remove, r.ID), append(remExt, r.ExternalID)
				continue
			}
			r := mc.Add[k]
			id := r.ID
			if id == "" {
				id = a.userID(r.ExternalID)
			}
			if id == "" {
				a.mu.Lock()
				if !a.leftOut["user/"+r.ExternalID] {
					a.errs = append(a.errs, fmt.Sprintf("group %s: member %s not added: the user was not created in this run", mc.Group.ExternalID, r.ExternalID))
				}
				a.mu.Unlock()
				continue
			}
			p.Add, addExt = append(p.Add, id), append(addExt, r.ExternalID)
		}
		if b.update != nil {
			up := groupUpdatePatch(*b.update)
			p.DisplayName, p.ExternalID = up.DisplayName, up.ExternalID
		}
		if len(p.Add)+len(p.Remove) == 0 && b.update == nil {
			return
		}
		err := a.r.cfg.Target.PatchGroup(a.rctx, mc.Group.ID, p)
		a.progress(len(p.Add) + len(p.Remove))
		if err != nil {
			a.fail(scim.KindGroup, mc.Group.ExternalID, fmt.Sprintf("membership change (+%d -%d)", len(p.Add), len(p.Remove)), err)
			return
		}
		if b.update != nil {
			a.groupUpdated(*b.update)
		}
		a.rec.addMembers(mc.Group.ExternalID, addExt)
		a.rec.removeMembers(mc.Group.ExternalID, remExt)
		a.count(func(c *state.Counts) { c.MemberAdds += len(p.Add); c.MemberRemoves += len(p.Remove) })
	})
}

func (a *applier) failedGroup(ext string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed["group/"+ext]
}
