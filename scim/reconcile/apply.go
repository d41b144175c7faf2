package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/state"
)

// applier carries out one plan. Its phases run in an order that keeps every request valid:
//
//  1. users deleted or disabled (a leaver frees the userName a joiner may take);
//  2. user updates, renames included, whose manager already exists;
//  3. user creates, managers before the people they manage;
//  4. user updates whose manager was created in step 3;
//  5. groups deleted, then renamed (without member changes);
//  6. groups created, each carrying its first members in its POST;
//  7. membership PATCHes, 100 changes each, a pending rename folded into the first.
//
// Requests within a phase run concurrently; the client's shared limiter sets the pace. Every
// success is recorded in the state store; one failure is reported and does not stop the rest.
// When ctx is done no new request starts, but those in flight finish and are recorded.
type applier struct {
	r    *Reconciler
	log  *slog.Logger
	p    *plan.Plan
	k    *known
	rec  *recorder
	stop context.Context // done: start nothing new
	rctx context.Context // for requests in flight: never cancelled

	mu       sync.Mutex
	userIDs  map[string]string   // user externalId -> target id, as known or created
	failed   map[string]bool     // "user/<ext>" or "group/<ext>" that failed in this run
	leftover []plan.MemberChange // members of new groups beyond what their POST carried
	current  *scim.TargetState   // nil when the state store was trusted
	scope    *scope              // the selection of a targeted run; nil for a full one
	counts   state.Counts
	errs     []string

	done, total atomic.Int64
}

func newApplier(r *Reconciler, log *slog.Logger, p *plan.Plan, k *known, current *scim.TargetState) *applier {
	a := &applier{
		r: r, log: log, p: p, k: k, current: current,
		rec:     newRecorder(r.cfg.State, r.cfg.Now),
		userIDs: make(map[string]string, len(p.UserIDs)+len(p.CreateUsers)),
		failed:  map[string]bool{},
	}
	for ext, id := range p.UserIDs {
		a.userIDs[ext] = id
	}
	// Progress counts objects and memberships; a new group's members count as they are written.
	total := p.Writes()
	for _, g := range p.CreateGroups {
		total += len(g.Members)
	}
	a.total.Store(int64(total))
	return a
}

func (a *applier) userID(ext string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.userIDs[ext]
}

func (a *applier) fail(kind, ext, what string, err error) {
	a.mu.Lock()
	a.failed[kind+"/"+ext] = true
	a.counts.Failed++
	a.errs = append(a.errs, fmt.Sprintf("%s %s: %s: %v", kind, ext, what, err))
	a.mu.Unlock()
	a.log.Warn("change failed", "kind", kind, "id", ext, "change", what, "err", err)
}

func (a *applier) count(f func(c *state.Counts)) {
	a.mu.Lock()
	f(&a.counts)
	a.mu.Unlock()
}

func (a *applier) progress(n int) {
	d := a.done.Add(int64(n))
	if a.r.cfg.Progress != nil {
		a.r.cfg.Progress(int(d), int(a.total.Load()))
	}
}

// each runs fn for 0..n-1 on the configured number of workers, starting nothing once stop is done.
func (a *applier) each(n int, fn func(i int)) {
	workers := min(a.r.cfg.Concurrency, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || a.stop.Err() != nil {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

func (a *applier) apply(ctx context.Context) error {
	a.stop = ctx
	a.rctx = context.WithoutCancel(ctx)
	defer a.rec.close()
	if err := a.recordOwnership(); err != nil {
		return err
	}
	a.deprovisionUsers()
	created := map[string]bool{}
	for _, u := range a.p.CreateUsers {
		created[u.ExternalID] = true
	}
	var early, late []plan.UserUpdate
	for _, u := range a.p.UpdateUsers {
		if created[u.User.Enterprise.Manager] {
			late = append(late, u)
		} else {
			early = append(early, u)
		}
	}
	a.updateUsers(early)
	if err := a.createUsers(); err != nil {
		return err
	}
	a.updateUsers(late)
	a.deleteGroups()
	a.renameGroups()
	if err := a.createGroups(); err != nil {
		return err
	}
	a.patchMembers()
	return a.rec.flush(a.rctx)
}

// recordOwnership writes the plan's claims and forgettings, which need no request.
func (a *applier) recordOwnership() error {
	// A claimed object is recorded as the target holds it; a planned update rewrites it.
	extOf := make(map[string]string, len(a.userIDs))
	for ext, id := range a.userIDs {
		extOf[id] = ext
	}
	for _, c := range a.p.Claims {
		if a.current == nil {
			continue // claims need a full read
		}
		if c.Kind == scim.KindUser {
			for _, t := range a.current.Users {
				if t.ID == c.ID {
					u := t.User
					u.Enterprise.Manager = extOf[u.Enterprise.Manager]
					a.rec.putUser(c.ID, u)
				}
			}
			continue
		}
		for _, t := range a.current.Groups {
			if t.ID == c.ID {
				a.rec.putGroup(c.ID, scim.Group{ExternalID: c.ExternalID, DisplayName: t.DisplayName})
				var members []string
				for _, m := range t.Members {
					if ext := extOf[m]; ext != "" {
						members = append(members, ext)
					}
				}
				a.rec.addMembers(c.ExternalID, members)
			}
		}
	}
	for _, f := range a.p.Forget {
		a.rec.forget(f.Kind, f.ExternalID)
	}
	return a.rec.flush(a.rctx)
}

func (a *applier) deprovisionUsers() {
	a.each(len(a.p.DisableUsers), func(i int) {
		r := a.p.DisableUsers[i]
		err := a.r.cfg.Target.SetUserActive(a.rctx, r.ID, false)
		a.progress(1)
		if err != nil && !errors.Is(err, scim.ErrNotFound) {
			a.fail(scim.KindUser, r.ExternalID, "disable", err)
			return
		}
		if errors.Is(err, scim.ErrNotFound) {
			a.rec.forget(scim.KindUser, r.ExternalID)
			return
		}
		u := a.k.lastWritten(r.ExternalID)
		u.Active = false
		a.rec.putUser(r.ID, u)
		a.count(func(c *state.Counts) { c.Disabled++ })
	})
	a.each(len(a.p.DeleteUsers), func(i int) {
		r := a.p.DeleteUsers[i]
		err := a.r.cfg.Target.DeleteUser(a.rctx, r.ID)
		a.progress(1)
		if err != nil && !errors.Is(err, scim.ErrNotFound) { // 404: already gone, counts as done
			a.fail(scim.KindUser, r.ExternalID, "delete", err)
			return
		}
		a.rec.forget(scim.KindUser, r.ExternalID)
		a.count(func(c *state.Counts) { c.Deleted++ })
	})
}

func (a *applier) updateUsers(updates []plan.UserUpdate) {
	a.each(len(updates), func(i int) {
		u := updates[i]
		mgr, ok := a.managerID(u.User)
		if !ok {
			u.User.Enterprise.Manager = ""
		}
		err := a.r.cfg.Target.ReplaceUser(a.rctx, u.ID, u.User, mgr)
		a.progress(1)
		if err != nil {
			a.fail(scim.KindUser, u.User.ExternalID, "update", err)
			return
		}
		a.rec.putUser(u.ID, u.User)
		a.count(func(c *state.Counts) {
			if u.Adopted != "" {
				c.Adopted++
			}
			if len(u.Fields) > 0 {
				c.Updated++
			}
		})
	})
}

// managerID resolves a desired user's manager to a target id; ok is false when the manager has
// none (its create failed).
func (a *applier) managerID(u scim.User) (string, bool) {
	if u.Enterprise.Manager == "" {
		return "", true
	}
	id := a.userID(u.Enterprise.Manager)
	return id, id != ""
}

func (a *applier) createUsers() error {
	if len(a.p.CreateUsers) == 0 {
		return nil
	}
	exts := make([]string, len(a.p.CreateUsers))
	for i, u := range a.p.CreateUsers {
		exts[i] = u.ExternalID
	}
	// The intent is durable before any request: after a crash, a user found in the target with
	// one of these externalIds is known to be ours.
	if err := a.r.cfg.State.RecordPending(a.rctx, state.KindUser, exts, a.r.cfg.Now()); err != nil {
		return fmt.Errorf("reconcile: record pending user creates: %w", err)
	}
	for _, level := range managerLevels(a.p.CreateUsers) {
		a.each(len(level), func(i int) { a.createUser(level[i]) })
		if a.stop.Err() != nil {
			break
		}
	}
	return nil
}

func (a *applier) createUser(u scim.User) {
	mgr, ok := a.managerID(u)
	if !ok {
		u.Enterprise.Manager = "" // its manager's create failed; set on a later run
	}
	id, err := a.r.cfg.Target.CreateUser(a.rctx, u, mgr)
	if errors.Is(err, scim.ErrConflict) {
		id, err = a.resolveUserConflict(u, mgr)
	}
	a.progress(1)
	if err != nil {
		if refused(err) {
			a.rec.clearPending(scim.KindUser, u.ExternalID)
		}
		a.fail(scim.KindUser, u.ExternalID, "create", err)
		return
	}
	a.mu.Lock()
	a.userIDs[u.ExternalID] = id
	a.mu.Unlock()
	a.rec.putUser(id, u)
	a.count(func(c *state.Counts) { c.Created++ })
}

// resolveUserConflict handles a 409 on create: when the user that holds the name carries our
// externalId, our earlier create went through and its answer was lost; it is ours, and is brought
// in line. Anyone else's user is left alone.
func (a *applier) resolveUserConflict(u scim.User, mgr string) (string, error) {
	found, err := a.r.cfg.Target.FindUser(a.rctx, "externalId", u.ExternalID)
	if err != nil {
		return "", fmt.Errorf("look up after conflict: %w", err)
	}
	if found == nil {
		return "", fmt.Errorf("userName %q is taken by a user scimbridge does not own: %w", u.UserName, scim.ErrConflict)
	}
	if err := a.r.cfg.Target.ReplaceUser(a.rctx, found.ID, u, mgr); err != nil {
		return "", fmt.Errorf("update after conflict: %w", err)
	}
	return found.ID, nil
}

// managerLevels orders creates so that a manager is created before the people it manages; a
// manager cycle among new users is broken by leaving the manager to the next run's update.
func managerLevels(users []scim.User) [][]scim.User {
	byExt := make(map[string]int, len(users))
	for i, u := range users {
		byExt[u.ExternalID] = i
	}
	depth := make([]int, len(users))
	for i := range depth {
		depth[i] = -1
	}
	var level func(i int, seen map[int]bool) int
	level = func(i int, seen map[int]bool) int {
		if depth[i] >= 0 {
			return depth[i]
		}
		m, ok := byExt[users[i].Enterprise.Manager]
		if !ok || seen[i] {
			depth[i] = 0
			return 0
		}
		seen[i] = true
		depth[i] = level(m, seen) + 1
		return depth[i]
	}
	var levels [][]scim.User
	for i := range users {
		d := level(i, map[int]bool{})
		for len(levels) <= d {
			levels = append(levels, nil)
		}
		levels[d] = append(levels[d], users[i])
	}
	return levels
}

func (a *applier) deleteGroups() {
	a.each(len(a.p.DeleteGroups), func(i int) {
		r := a.p.DeleteGroups[i]
		err := a.r.cfg.Target.DeleteGroup(a.rctx, r.ID)
		a.progress(1)
		if err != nil && !errors.Is(err, scim.ErrNotFound) {
			a.fail(scim.KindGroup, r.ExternalID, "delete", err)
			return
		}
		a.rec.forget(scim.KindGroup, r.ExternalID)
		a.count(func(c *state.Counts) { c.Deleted++ })
	})
}

// renameGroups sends the group updates of groups without member changes; the others ride on the
// group's first membership PATCH.
func (a *applier) renameGroups() {
	withMembers := map[string]bool{}
	for _, m := range a.p.Members {
		withMembers[m.Group.ID] = true
	}
	var alone []plan.GroupUpdate
	for _, u := range a.p.UpdateGroups {
		if !withMembers[u.ID] {
			alone = append(alone, u)
		}
	}
	a.each(len(alone), func(i int) {
		u := alone[i]
		err := a.r.cfg.Target.PatchGroup(a.rctx, u.ID, groupUpdatePatch(u))
		a.progress(1)
		if err != nil {
			a.fail(scim.KindGroup, u.ExternalID, "update", err)
			return
		}
		a.groupUpdated(u)
	})
}

func groupUpdatePatch(u plan.GroupUpdate) scim.GroupPatch {
	var p scim.GroupPatch
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
	if err := a.r.cfg.State.RecordPending(a.rctx, state.KindGroup, exts, a.r.cfg.Now()); err != nil {
		return fmt.Errorf("reconcile: record pending group creates: %w", err)
	}
	max := a.r.cfg.MaxMembersPerRequest
	a.each(len(a.p.CreateGroups), func(i int) {
		g := a.p.CreateGroups[i]
		ids, idExts := a.resolveMembers(g.ExternalID, g.Members)
		first, firstExt := ids[:min(max, len(ids))], idExts[:min(max, len(ids))]
		id, err := a.r.cfg.Target.CreateGroup(a.rctx, scim.Group{ExternalID: g.ExternalID, DisplayName: g.DisplayName}, first)
		if errors.Is(err, scim.ErrConflict) {
			id, err = a.resolveGroupConflict(g, first)
		}
		a.progress(1 + len(first))
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
// users: a group carrying our externalId is ours (its first members are then PATCHed in).
func (a *applier) resolveGroupConflict(g scim.Group, first []string) (string, error) {
	found, err := a.r.cfg.Target.FindGroup(a.rctx, "externalId", g.ExternalID)
	if err != nil {
		return "", fmt.Errorf("look up after conflict: %w", err)
	}
	if found == nil {
		return "", fmt.Errorf("displayName %q is taken by a group scimbridge does not own: %w", g.DisplayName, scim.ErrConflict)
	}
	if len(first) > 0 {
		// The lost create may or may not have carried its members; adding a member twice is
		// harmless, so add them again.
		if err := a.r.cfg.Target.PatchGroup(a.rctx, found.ID, scim.GroupPatch{Add: first}); err != nil {
			return "", fmt.Errorf("add members after conflict: %w", err)
		}
	}
	return found.ID, nil
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
		a.errs = append(a.errs, fmt.Sprintf("group %s: member %s not added: the user was not created in this run", groupExt, ext))
		a.mu.Unlock()
	}
	return ids, idExts
}

func (a *applier) patchMembers() {
	max := a.r.cfg.MaxMembersPerRequest
	updates := map[string]*plan.GroupUpdate{}
	for i := range a.p.UpdateGroups {
		updates[a.p.UpdateGroups[i].ID] = &a.p.UpdateGroups[i]
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
		var p scim.GroupPatch
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
				a.errs = append(a.errs, fmt.Sprintf("group %s: member %s not added: the user was not created in this run", mc.Group.ExternalID, r.ExternalID))
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

// refused reports whether the target answered a create with a definite refusal, so that nothing
// was created: a 4xx other than 409 and 429. A lost answer, a timeout or a 5xx may hide a create
// that went through, so its pending intent stays for the next run to resolve.
func refused(err error) bool {
	var apiErr *scim.APIError
	return errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 &&
		!errors.Is(err, scim.ErrConflict) && !errors.Is(err, scim.ErrThrottled)
}
