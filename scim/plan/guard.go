package plan

import (
	"fmt"
	"math"
)

// Guards are the safety limits a plan must pass before anything is written. They count users
// deleted or disabled and groups deleted, against the objects scimbridge owns.
type Guards struct {
	// MaxDeletes blocks a run that would deprovision more than this many users, or delete more
	// than this many groups. Negative disables the limit.
	MaxDeletes int `json:"maxDeletes"`
	// MaxDeletePercent blocks a run that would deprovision more than this share of the owned
	// users, or delete more than this share of the owned groups. Negative disables the limit.
	MaxDeletePercent float64 `json:"maxDeletePercent"`
	// AllowDeletes lets a run through whatever the limits say when it deprovisions at most this
	// many objects in all: a person's explicit consent (`--allow-deletes N`).
	AllowDeletes int `json:"allowDeletes"`
}

// DefaultGuards are on unless configured otherwise.
var DefaultGuards = Guards{MaxDeletes: 100, MaxDeletePercent: 20}

// BlockedError is returned by Check when a guard stops the run.
type BlockedError struct {
	Reason string
	// Users and Groups are the deprovisions the plan holds.
	Users, Groups int
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("blocked by a safety guard: %s; nothing was written (review the plan, then re-run with --allow-deletes %d to let it through)", e.Reason, e.Users+e.Groups)
}

// Check evaluates the guards against the plan. It returns a *BlockedError when the run must not
// go ahead.
func (g Guards) Check(p *Plan) error {
	users, groups := p.Deprovisions()
	total := users + groups
	if total == 0 || total <= g.AllowDeletes {
		return nil
	}
	block := func(format string, args ...any) error {
		return &BlockedError{Reason: fmt.Sprintf(format, args...), Users: users, Groups: groups}
	}
	if p.DesiredUsers == 0 && users > 0 {
		return block("the source holds no users, and the plan would deprovision all %d owned users", users)
	}
	if p.DesiredGroups == 0 && groups > 0 {
		return block("the source holds no groups, and the plan would delete all %d owned groups", groups)
	}
	if g.MaxDeletes >= 0 {
		if users > g.MaxDeletes {
			return block("%d users would be deprovisioned, more than max_deletes (%d)", users, g.MaxDeletes)
		}
		if groups > g.MaxDeletes {
			return block("%d groups would be deleted, more than max_deletes (%d)", groups, g.MaxDeletes)
		}
	}
	if g.MaxDeletePercent >= 0 {
		if pct := percent(users, p.OwnedUsers); pct > g.MaxDeletePercent {
			return block("%d of %d owned users (%.1f%%) would be deprovisioned, more than max_delete_percent (%g%%)", users, p.OwnedUsers, pct, g.MaxDeletePercent)
		}
		if pct := percent(groups, p.OwnedGroups); pct > g.MaxDeletePercent {
			return block("%d of %d owned groups (%.1f%%) would be deleted, more than max_delete_percent (%g%%)", groups, p.OwnedGroups, pct, g.MaxDeletePercent)
		}
	}
	return nil
}

func percent(n, of int) float64 {
	if n == 0 {
		return 0
	}
	if of == 0 {
		return math.Inf(1)
	}
	return 100 * float64(n) / float64(of)
}
