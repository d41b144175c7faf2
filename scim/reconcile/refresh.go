package reconcile

import (
	"context"
	"fmt"
	"slices"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/state"
)

// refresh brings the state store's record of owned objects in line with the desired snapshot for
// every record that this run left matching it: owned, not failed, and not named by a problem.
// After a full read this records what the target was found to hold already (so that the next,
// trusted run plans nothing); after a trusted run it is a cheap check that changes nothing.
// Records that failed keep the record of what was really written, so the next run retries them.
func (a *applier) refresh(ctx context.Context, desired scim.Snapshot) error {
	if a.stop.Err() != nil {
		return nil // an interrupted run only keeps what it recorded as it went
	}
	k, err := loadKnown(ctx, a.r.cfg.State, a.part)
	if err != nil {
		return err
	}
	excluded := make(map[string]bool, len(a.failed)+len(a.p.Problems))
	for key := range a.failed {
		excluded[key] = true
	}
	for _, p := range a.p.Problems {
		excluded[p.Kind+"/"+p.ID] = true
	}
	now := a.r.cfg.Now()
	var puts []state.Object
	for _, u := range desired.Users {
		obj, owned := k.users[u.ExternalID]
		if !owned || excluded["user/"+u.ExternalID] || !a.scope.user(u.ExternalID) {
			continue
		}
		if m := u.Enterprise.Manager; m != "" {
			if _, ok := k.users[m]; !ok || excluded["user/"+m] {
				continue
			}
		}
		next, err := state.NewUserObject(obj.TargetID, u, now)
		if err != nil {
			return fmt.Errorf("reconcile: refresh user %q: %w", u.ExternalID, err)
		}
		if next.Hash != obj.Hash {
			puts = append(puts, next)
		}
	}
	type memberDiff struct {
		group       string
		add, remove []string
	}
	var diffs []memberDiff
	for _, g := range desired.Groups {
		obj, owned := k.groups[g.ExternalID]
		if !owned || excluded["group/"+g.ExternalID] {
			continue
		}
		if a.scope.group(g.ExternalID) {
			next, err := state.NewGroupObject(obj.TargetID, scim.Group{ExternalID: g.ExternalID, DisplayName: g.DisplayName}, now)
			if err != nil {
				return fmt.Errorf("reconcile: refresh group %q: %w", g.ExternalID, err)
			}
			if next.Hash != obj.Hash {
				puts = append(puts, next)
			}
		}
		// A targeted run refreshes only the memberships in its selection.
		inScope := func(u string) bool { return a.scope.membership(g.ExternalID, u) }
		want := make([]string, 0, len(g.Members))
		for _, m := range g.Members {
			if _, ok := k.users[m]; ok && inScope(m) {
				want = append(want, m)
			}
		}
		slices.Sort(want)
		have := slices.DeleteFunc(slices.Clone(k.members[g.ExternalID]), func(u string) bool { return !inScope(u) })
		d := memberDiff{group: g.ExternalID}
		i, j := 0, 0
		for i < len(want) || j < len(have) {
			switch {
			case j == len(have) || (i < len(want) && want[i] < have[j]):
				d.add = append(d.add, want[i])
				i++
			case i == len(want) || have[j] < want[i]:
				d.remove = append(d.remove, have[j])
				j++
			default:
				i++
				j++
			}
		}
		if len(d.add)+len(d.remove) > 0 {
			diffs = append(diffs, d)
		}
	}
	if len(puts) > 0 {
		if err := a.r.cfg.State.PutObjects(ctx, puts); err != nil {
			return fmt.Errorf("reconcile: refresh %d objects: %w", len(puts), err)
		}
	}
	var adds []state.Membership
	for _, d := range diffs {
		for _, u := range d.add {
			adds = append(adds, state.Membership{Group: d.group, User: u})
		}
		if len(d.remove) > 0 {
			if err := a.r.cfg.State.RemoveMembers(ctx, d.group, d.remove); err != nil {
				return fmt.Errorf("reconcile: refresh members of %q: %w", d.group, err)
			}
		}
	}
	if len(adds) > 0 {
		if err := a.r.cfg.State.AddMemberships(ctx, adds); err != nil {
			return fmt.Errorf("reconcile: refresh %d memberships: %w", len(adds), err)
		}
	}
	if len(puts)+len(adds) > 0 {
		a.log.Debug("state refreshed", "objects", len(puts), "memberships", len(adds))
	}
	return nil
}
