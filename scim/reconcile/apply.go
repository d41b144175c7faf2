package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/state"
)

// applier carries out one plan. Its phases run in an order that keeps every request valid:
//
//  1. users deleted or disabled (a leaver frees the userName a joiner may take);
//  2. temporary renames that break swaps, then user updates, renames included, whose manager
//     already exists, in waves so that a rename follows the one that frees its name
//     (plan.UserWaves);
//  3. user creates, managers before the people they manage;
//  4. user updates whose manager was created in step 3, then the creates that take a userName
//     one of them gives up;
//  5. groups deleted, then temporary renames and rename chains (plan.GroupWaves), then the other
//     renames of groups without member changes;
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
	// clashes are creates that ran into an object scimbridge does not own (made since the last
	// full read): left out like the plan's clashes, with a problem each, and remembered.
	clashes       []plan.Clash
	leftOut       map[string]bool // "user/<ext>" left out by a clash in this run
	clashProblems []scim.Problem
	newUnowned    []state.Unowned
	pendingAt     time.Time // when this run recorded its pending creates
	seenUsers     map[string]bool
	seenGroups    map[string]bool

	done, total atomic.Int64
}

func newApplier(r *Reconciler, log *slog.Logger, p *plan.Plan, k *known, current *scim.TargetState) *applier {
	a := &applier{
		r: r, log: log, p: p, k: k, current: current,
		rec:     newRecorder(r.cfg.State, r.cfg.Now),
		userIDs: make(map[string]string, len(p.UserIDs)+len(p.CreateUsers)),
		failed:  map[string]bool{},
		leftOut: map[string]bool{},
	}
	for ext, id := range p.UserIDs {
		a.userIDs[ext] = id
	}
	o := k.owned()
	a.seenUsers, a.seenGroups = o.SeenUnownedUsers, o.SeenUnownedGroups
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
	early, late, deferred := plan.UserWaves(a.p.UpdateUsers, created)
	a.tempRenameUsers()
	for _, wave := range early {
		a.updateUsers(wave)
	}
	var now, after []scim.User
	for _, u := range a.p.CreateUsers {
		if deferred[strings.ToLower(u.UserName)] {
			after = append(after, u)
		} else {
			now = append(now, u)
		}
	}
	if err := a.createUsers(now); err != nil {
		return err
	}
	for _, wave := range late {
		a.updateUsers(wave)
	}
	if err := a.createUsers(after); err != nil {
		return err
	}
	a.deleteGroups()
	newNames := make(map[string]bool, len(a.p.CreateGroups))
	for _, g := range a.p.CreateGroups {
		newNames[strings.ToLower(g.DisplayName)] = true
	}
	waves, rest := plan.GroupWaves(a.p.UpdateGroups, newNames)
	a.tempRenameGroups()
	for _, wave := range waves {
		a.sendGroupUpdates(wave)
	}
	a.renameGroups(rest)
	if err := a.createGroups(); err != nil {
		return err
	}
	a.patchMembers(rest)
	return a.rec.flush(a.rctx)
}

// tempRenameUsers renames the users that break a rename cycle to their temporary names.
func (a *applier) tempRenameUsers() {
	var temps []plan.UserUpdate
	for _, u := range a.p.UpdateUsers {
		if u.TempName != "" {
			temps = append(temps, u)
		}
	}
	a.each(len(temps), func(i int) {
		u := temps[i]
		tmp := a.k.lastWritten(u.User.ExternalID)
		if tmp.ExternalID == "" {
			tmp = u.User // adopted in this run: write the desired user under the temporary name
		}
		tmp.UserName = u.TempName
		mgr, ok := a.managerID(tmp)
		if !ok {
			tmp.Enterprise.Manager = ""
		}
		if err := a.r.cfg.Target.ReplaceUser(a.rctx, u.ID, tmp, mgr); err != nil {
			a.fail(scim.KindUser, u.User.ExternalID, "rename to the temporary name "+u.TempName, err)
			return
		}
		a.rec.putUser(u.ID, tmp)
	})
}

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

// recordOwnership writes the plan's claims and forgettings, which need no request.
func (a *applier) recordOwnership() error {
	// A claimed object is recorded as the target holds it; a planned update rewrites it.
	extOf := make(map[string]string, len(a.userIDs))
	for ext, id := range a.userIDs {
		extOf[id] = ext
	}
	var usersByID map[string]*scim.TargetUser
	var groupsByID map[string]*scim.TargetGroup
	if a.current != nil && len(a.p.Claims) > 0 {
		usersByID = make(map[string]*scim.TargetUser, len(a.current.Users))
		for i := range a.current.Users {
			usersByID[a.current.Users[i].ID] = &a.current.Users[i]
		}
		groupsByID = make(map[string]*scim.TargetGroup, len(a.current.Groups))
		for i := range a.current.Groups {
			groupsByID[a.current.Groups[i].ID] = &a.current.Groups[i]
		}
	}
	for _, c := range a.p.Claims {
		if a.current == nil {
			continue // claims need a full read
		}
		if c.Adopted != "" {
			a.count(func(c *state.Counts) { c.Adopted++ })
		}
		if c.Kind == scim.KindUser {
			if t := usersByID[c.ID]; t != nil {
				u := t.User
				u.Enterprise.Manager = extOf[u.Enterprise.Manager]
				a.rec.putUser(c.ID, u)
			}
			continue
		}
		if t := groupsByID[c.ID]; t != nil {
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
	for _, c := range a.p.ClearPending {
		a.rec.clearPending(c.Kind, c.ExternalID)
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
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			a.fail(scim.KindUser, r.ExternalID, "disable", err)
			return
		}
		if errors.Is(err, client.ErrNotFound) {
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
		if err != nil && !errors.Is(err, client.ErrNotFound) { // 404: already gone, counts as done
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
			switch {
			case u.Disables(): // disabled in the directory
				c.Disabled++
			case len(u.Fields) > 0:
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

func (a *applier) createUsers(users []scim.User) error {
	if len(users) == 0 {
		return nil
	}
	exts := make([]string, len(users))
	for i, u := range users {
		exts[i] = u.ExternalID
	}
	// The intent is durable before any request: after a crash, a user found in the target with
	// one of these externalIds is known to be ours.
	a.pendingAt = a.r.cfg.Now()
	if err := a.r.cfg.State.RecordPending(a.rctx, state.KindUser, exts, a.pendingAt); err != nil {
		return fmt.Errorf("reconcile: record pending user creates: %w", err)
	}
	for _, level := range managerLevels(users) {
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
	if errors.Is(err, client.ErrConflict) {
		id, err = a.resolveUserConflict(u, mgr)
	}
	a.progress(1)
	if errors.Is(err, errClash) {
		return
	}
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

// errClash marks a create left out because an object scimbridge does not own holds its name
// or externalId; the clash is recorded by the applier, not counted as a failure.
var errClash = errors.New("clash with an object scimbridge does not own")

// resolveUserConflict handles a 409 on create. When a user carries our externalId and could have
// been made by this create (see plan.ClockSkew and the package doc), our create went through and
// its answer was lost: it is ours, and is brought in line. Anyone else's user is left alone, the
// record is left out as a clash, the pending intent is cleared and the user remembered as unowned.
func (a *applier) resolveUserConflict(u scim.User, mgr string) (string, error) {
	found, err := a.r.cfg.Target.FindUser(a.rctx, "externalId", u.ExternalID)
	if err != nil {
		return "", fmt.Errorf("look up after conflict: %w", err)
	}
	if found != nil && a.claimable(scim.KindUser, found.ID, found.Created) {
		if err := a.r.cfg.Target.ReplaceUser(a.rctx, found.ID, u, mgr); err != nil {
			return "", fmt.Errorf("update after conflict: %w", err)
		}
		return found.ID, nil
	}
	c := plan.Clash{Kind: scim.KindUser, ExternalID: u.ExternalID, Field: "externalId", Adopt: plan.AdoptExternalID}
	if found == nil {
		// Someone else's user holds the userName; find it, so that the next run knows it.
		holder, err := a.r.cfg.Target.FindUser(a.rctx, "userName", u.UserName)
		if err != nil || holder == nil {
			a.clash(c, u.UserName, nil)
			return "", errClash
		}
		found = holder
		c.Field, c.Adopt = "userName", plan.AdoptName
	}
	c.TargetID, c.TargetExternalID, c.TargetName = found.ID, found.ExternalID, found.UserName
	a.clash(c, found.UserName, &state.Unowned{Kind: state.KindUser, TargetID: found.ID, ExternalID: found.ExternalID, Name: found.UserName})
	return "", errClash
}

// claimable reports whether an object found by externalId after a 409 could have been made by
// this run's create: not seen as unowned by the last full read, and made no earlier than the
// pending intent minus plan.ClockSkew (when the target says when it made it).
func (a *applier) claimable(kind, id string, created time.Time) bool {
	seen := a.seenUsers
	if kind == scim.KindGroup {
		seen = a.seenGroups
	}
	if seen[id] {
		return false
	}
	return created.IsZero() || a.pendingAt.IsZero() || !created.Before(a.pendingAt.Add(-plan.ClockSkew))
}

// clash records a create left out because of an unowned object, clears its pending intent and
// remembers the object (when known) for the trusted runs that follow.
func (a *applier) clash(c plan.Clash, name string, obj *state.Unowned) {
	a.rec.clearPending(c.Kind, c.ExternalID)
	reason := c.Field + " " + strconv.Quote(name) + " is held by an object scimbridge does not own, made since the last full read"
	switch c.Adopt {
	case plan.AdoptExternalID:
		reason += " (its externalId matches: set adopt: external_id to take it over)"
	case plan.AdoptName:
		reason += " (set adopt: name to take it over)"
	}
	a.mu.Lock()
	a.leftOut[c.Kind+"/"+c.ExternalID] = true
	a.clashes = append(a.clashes, c)
	a.clashProblems = append(a.clashProblems, scim.Problem{Kind: c.Kind, ID: c.ExternalID, Field: c.Field, Reason: reason, Dropped: true})
	if obj != nil {
		a.newUnowned = append(a.newUnowned, *obj)
	}
	a.mu.Unlock()
	a.log.Warn("record left out: clash with an object scimbridge does not own", "kind", c.Kind, "id", c.ExternalID, "field", c.Field)
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

// refused reports whether the target answered a create with a definite refusal, so that nothing
// was created: a 4xx other than 409 and 429. A lost answer, a timeout or a 5xx may hide a create
// that went through, so its pending intent stays for the next run to resolve.
func refused(err error) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 &&
		!errors.Is(err, client.ErrConflict) && !errors.Is(err, client.ErrThrottled)
}
