package access

import (
	"fmt"
	"strconv"

	"github.com/scimbridge/scimbridge/scim/plan"
)

// Guards limit how many assignments scimbridge removes in one run, like plan.Guards limit the
// users and groups it deprovisions: a rule edited by mistake, a group renamed out of a pattern or
// an organization read that lost its OUs would otherwise take everyone's access away at once.
type Guards struct {
	// MaxDeletes blocks a run that would delete more than this many assignments. Negative: off.
	MaxDeletes int `json:"maxDeletes"`
	// MaxDeletePercent blocks a run that would delete more than this share of the assignments
	// scimbridge owns, and at least MinPercentDeletes of them. Negative: off.
	MaxDeletePercent float64 `json:"maxDeletePercent"`
	// AllowDeletes lets a run past both limits when it deletes at most this many assignments
	// (`--allow-assignment-deletes N`, or sync.guards.allow_assignment_deletes in serve).
	AllowDeletes int `json:"allowDeletes"`
}

// DefaultGuards are on unless configured otherwise.
var DefaultGuards = Guards{MaxDeletes: 100, MaxDeletePercent: 20}

// MinPercentDeletes is the fewest deletions the share limit blocks: with a handful of
// assignments, removing one is already a large share.
const MinPercentDeletes = 3

// AllowFlag is the sync flag that lets a blocked access plan through.
const AllowFlag = "--allow-assignment-deletes"

// Check returns a *plan.BlockedError when the plan deletes more assignments than the guards
// allow, naming the limit and the flag that lets this plan through; nil otherwise.
func (g Guards) Check(p *Plan) error {
	n := len(p.DeleteAssignments)
	var reason string
	switch {
	case n == 0:
		return nil
	case g.MaxDeletes >= 0 && n > g.MaxDeletes:
		reason = fmt.Sprintf("%d account assignments would be deleted, more than max_assignment_deletes (%d)", n, g.MaxDeletes)
	case g.MaxDeletePercent >= 0 && n >= MinPercentDeletes && pct(n, p.OwnedAssignments) > g.MaxDeletePercent:
		reason = fmt.Sprintf("%d of %d owned account assignments (%.1f%%) would be deleted, more than max_assignment_delete_percent (%g%%)",
			n, p.OwnedAssignments, pct(n, p.OwnedAssignments), g.MaxDeletePercent)
	default:
		return nil
	}
	if n <= g.AllowDeletes {
		return nil
	}
	return &plan.BlockedError{Reason: reason, Flags: []string{AllowFlag + " " + strconv.Itoa(n)}}
}

func pct(n, of int) float64 {
	if of == 0 {
		return 100
	}
	return 100 * float64(n) / float64(of)
}
