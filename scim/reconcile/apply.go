package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	part     *part               // the part of the state store a selective run planned; nil for all
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
	sent          map[string]bool // "user/<ext>" or "group/<ext>" whose create was sent (stop.go)

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
	a.clearUnsent(scim.KindUser, exts)
	return nil
}

func (a *applier) createUser(u scim.User) {
	mgr, ok := a.managerID(u)
	if !ok {
		u.Enterprise.Manager = "" // its manager's create failed; set on a later run
	}
	a.markSent(scim.KindUser, u.ExternalID)
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

// refused reports whether the target answered a create with a definite refusal, so that nothing
// was created: a 4xx other than 409 and 429. A lost answer, a timeout or a 5xx may hide a create
// that went through, so its pending intent stays for the next run to resolve.
func refused(err error) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 &&
		!errors.Is(err, client.ErrConflict) && !errors.Is(err, client.ErrThrottled)
}
