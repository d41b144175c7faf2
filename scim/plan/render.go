package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Summary counts a plan's changes.
type Summary struct {
	CreateUsers   int `json:"createUsers"`
	UpdateUsers   int `json:"updateUsers"`
	DisableUsers  int `json:"disableUsers"`
	DeleteUsers   int `json:"deleteUsers"`
	CreateGroups  int `json:"createGroups"`
	UpdateGroups  int `json:"updateGroups"`
	DeleteGroups  int `json:"deleteGroups"`
	AddMembers    int `json:"addMembers"`
	RemoveMembers int `json:"removeMembers"`
	Problems      int `json:"problems"`
	// Adopt counts the unowned objects taken over; AdoptWithoutRequest those of them recorded as
	// owned without any request because nothing differs.
	Adopt               int `json:"adopt"`
	AdoptWithoutRequest int `json:"adoptWithoutRequest"`
	// LeftOut counts the source records left out as a whole (invalid, or clashing with an
	// unowned object); Clashes those left out because of an unowned object.
	LeftOut int `json:"leftOut"`
	Clashes int `json:"clashes"`
	// TempRenames counts the extra renames through a temporary name that break rename cycles.
	TempRenames int `json:"tempRenames,omitempty"`
	// LowerBound is the fewest write requests that express the plan (see LowerBound).
	LowerBound int `json:"lowerBound"`
}

// Summarize counts the plan's changes; maxMembers is the target's membership changes per request.
func (p *Plan) Summarize(maxMembers int) Summary {
	s := Summary{
		CreateUsers:  len(p.CreateUsers),
		UpdateUsers:  len(p.UpdateUsers),
		DisableUsers: len(p.DisableUsers),
		DeleteUsers:  len(p.DeleteUsers),
		CreateGroups: len(p.CreateGroups),
		UpdateGroups: len(p.UpdateGroups),
		DeleteGroups: len(p.DeleteGroups),
		Problems:     len(p.Problems),
		Adopt:        p.Adoptions(),
		LeftOut:      p.LeftOut(),
		Clashes:      len(p.Clashes),
		TempRenames:  p.tempRenames(),
		LowerBound:   p.LowerBound(maxMembers),
	}
	for _, u := range p.UpdateUsers {
		if u.Disables() { // disabled in the directory: a disable, not an update
			s.UpdateUsers--
			s.DisableUsers++
		}
	}
	for _, c := range p.Claims {
		if c.Adopted != "" {
			s.AdoptWithoutRequest++
		}
	}
	for _, g := range p.CreateGroups {
		s.AddMembers += len(g.Members)
	}
	for _, m := range p.Members {
		s.AddMembers += len(m.Add)
		s.RemoveMembers += len(m.Remove)
	}
	return s
}

// LowerBound is the fewest write requests that can express the plan, the figure the apply is
// measured against: one request per user or group to create, update, disable or delete; for
// memberships, ceil(changes / maxMembers) per group, after the first maxMembers members that a
// new group's POST carries; one more per rename cycle (its temporary rename); nothing for what
// did not change, adoptions without a difference included. A group update (rename) of a group
// whose members change rides on its first membership PATCH and costs nothing more, unless it must
// go first on its own (a rename chain or cycle, or a rename that frees a name a new group takes:
// see GroupWaves). Reads are counted apart.
func (p *Plan) LowerBound(maxMembers int) int {
	if maxMembers <= 0 {
		maxMembers = 100
	}
	n := len(p.CreateUsers) + len(p.UpdateUsers) + len(p.DisableUsers) + len(p.DeleteUsers) +
		len(p.CreateGroups) + len(p.UpdateGroups) + len(p.DeleteGroups) + p.tempRenames()
	n -= p.foldedGroupUpdates()
	for _, g := range p.CreateGroups {
		if extra := len(g.Members) - maxMembers; extra > 0 {
			n += ceilDiv(extra, maxMembers)
		}
	}
	for _, m := range p.Members {
		n += ceilDiv(len(m.Add)+len(m.Remove), maxMembers)
	}
	return n
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// foldedGroupUpdates counts the group updates the applier folds into the group's first membership
// PATCH: those GroupWaves does not send on their own, of groups whose members change.
func (p *Plan) foldedGroupUpdates() int {
	if len(p.UpdateGroups) == 0 || len(p.Members) == 0 {
		return 0
	}
	patched := make(map[string]bool, len(p.Members))
	for _, m := range p.Members {
		if len(m.Add)+len(m.Remove) > 0 {
			patched[m.Group.ID] = true
		}
	}
	created := make(map[string]bool, len(p.CreateGroups))
	for _, g := range p.CreateGroups {
		created[strings.ToLower(g.DisplayName)] = true
	}
	_, rest := GroupWaves(p.UpdateGroups, created)
	n := 0
	for _, u := range rest {
		if patched[u.ID] {
			n++
		}
	}
	return n
}

func (p *Plan) tempRenames() int {
	n := 0
	for _, u := range p.UpdateUsers {
		if u.TempName != "" {
			n++
		}
	}
	for _, g := range p.UpdateGroups {
		if g.TempName != "" {
			n++
		}
	}
	return n
}

// jsonPlan is the stable JSON form of a plan.
type jsonPlan struct {
	*Plan
	Summary Summary `json:"summary"`
}

// WriteJSON writes the plan as indented, stable JSON with its summary.
func (p *Plan) WriteJSON(w io.Writer, maxMembers int) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonPlan{Plan: p, Summary: p.Summarize(maxMembers)})
}

// maxListed is how many members of one group the text form lists before it abbreviates.
const maxListed = 10

// WriteText writes the plan for a person, in the manner of `terraform plan`.
func (p *Plan) WriteText(w io.Writer, maxMembers int) error {
	var b strings.Builder
	s := p.Summarize(maxMembers)
	changes := !p.Empty() || s.Adopt > 0
	if changes {
		b.WriteString("scimbridge will make the following changes:\n\n")
	}
	for _, c := range p.Claims {
		if c.Adopted == AdoptedUnmatched {
			fmt.Fprintf(&b, "  = adopt %s %s (%s)%s; already inactive: recorded as owned, no request\n", c.Kind, q(c.Name), c.ExternalID, unmatchedNote)
		} else if c.Adopted != "" {
			fmt.Fprintf(&b, "  = adopt %s %s (%s) [matched by %s; nothing differs: recorded as owned, no request]\n", c.Kind, q(c.Name), c.ExternalID, c.Adopted)
		}
	}
	for _, u := range p.CreateUsers {
		fmt.Fprintf(&b, "  + user %s (%s)\n", q(u.UserName), u.ExternalID)
	}
	for _, u := range p.UpdateUsers {
		adopted := ""
		if u.Adopted != "" {
			adopted = " [adopt: matched by " + u.Adopted + "]"
		}
		switch {
		case u.Adopted == AdoptedUnmatched:
			fmt.Fprintf(&b, "  ! disable user %s (%s)%s\n", q(u.User.UserName), u.User.ExternalID, unmatchedNote)
		case u.Disables():
			fmt.Fprintf(&b, "  ! disable user %s (%s)%s: disabled in the directory\n", q(u.User.UserName), u.User.ExternalID, adopted)
		default:
			fmt.Fprintf(&b, "  ~ user %s (%s)%s\n", q(u.User.UserName), u.User.ExternalID, adopted)
		}
		if u.TempName != "" {
			fmt.Fprintf(&b, "      (a swap of names: first renamed to %s)\n", q(u.TempName))
		}
		for _, f := range u.Fields {
			fmt.Fprintf(&b, "      %s: %s -> %s\n", f.Name, q(f.From), q(f.To))
		}
	}
	for _, u := range p.DisableUsers {
		fmt.Fprintf(&b, "  ! disable user %s (%s)\n", q(u.Name), u.ExternalID)
	}
	for _, u := range p.DeleteUsers {
		fmt.Fprintf(&b, "  - user %s (%s)%s\n", q(u.Name), u.ExternalID, adoptNote(u))
	}
	for _, g := range p.CreateGroups {
		fmt.Fprintf(&b, "  + group %s (%s) with %d members\n", q(g.DisplayName), g.ExternalID, len(g.Members))
	}
	for _, g := range p.UpdateGroups {
		adopted := ""
		if g.Adopted != "" {
			adopted = " [adopt: matched by " + g.Adopted + "]"
		}
		if g.From != g.To {
			fmt.Fprintf(&b, "  ~ group %s -> %s (%s)%s\n", q(g.From), q(g.To), g.ExternalID, adopted)
		} else {
			fmt.Fprintf(&b, "  ~ group %s (%s)%s\n", q(g.To), g.ExternalID, adopted)
		}
		if g.TempName != "" {
			fmt.Fprintf(&b, "      (a swap of names: first renamed to %s)\n", q(g.TempName))
		}
		if g.SetExternalID {
			fmt.Fprintf(&b, "      externalId: -> %s\n", q(g.ExternalID))
		}
	}
	for _, g := range p.DeleteGroups {
		fmt.Fprintf(&b, "  - group %s (%s)%s\n", q(g.Name), g.ExternalID, adoptNote(g))
	}
	for _, m := range p.Members {
		fmt.Fprintf(&b, "  ~ members of %s (%s): +%d -%d\n", q(m.Group.Name), m.Group.ExternalID, len(m.Add), len(m.Remove))
		listRefs(&b, "+", m.Add)
		listRefs(&b, "-", m.Remove)
	}
	if len(p.Problems) > 0 {
		fmt.Fprintf(&b, "\nProblems (%s left out; nothing else is affected):\n", Count(len(p.Problems), "record or field", "records or fields"))
		for _, pr := range p.Problems {
			fmt.Fprintf(&b, "  ? %s\n", pr.Error())
		}
	}
	if changes || len(p.Problems) > 0 {
		b.WriteString("\n")
	}
	unmanaged := fmt.Sprintf("%d users and %d groups not managed by scimbridge left alone", p.UnmanagedUsers, p.UnmanagedGroups)
	if p.TargetNotRead {
		unmanaged = fmt.Sprintf("target not read this run: %d users and %d groups not managed by scimbridge known from the last full read", p.UnmanagedUsers, p.UnmanagedGroups)
	}
	leftOut := ""
	if s.LeftOut > 0 {
		leftOut = Count(s.LeftOut, "record is", "records are") + " left out (see Problems above"
		switch {
		case s.Clashes == 1 && s.LeftOut == 1:
			leftOut += "; it clashes with an object scimbridge does not own"
		case s.Clashes > 0:
			leftOut += fmt.Sprintf("; %d of them clash with objects scimbridge does not own", s.Clashes)
		}
		leftOut += ")"
	}
	switch {
	case !changes && s.LeftOut == 0:
		fmt.Fprintf(&b, "No changes. The target matches the source (%d users, %d groups; %s).\n", p.DesiredUsers, p.DesiredGroups, unmanaged)
	case !changes:
		fmt.Fprintf(&b, "No changes to make, but %s: the target does not match the source for them (%d users, %d groups; %s).\n", leftOut, p.DesiredUsers, p.DesiredGroups, unmanaged)
	default:
		adopt := ""
		if s.Adopt > 0 {
			adopt = fmt.Sprintf("%d objects to adopt (%d without a request); ", s.Adopt, s.AdoptWithoutRequest)
		}
		fmt.Fprintf(&b, "Plan: users %d to create, %d to update, %d to disable, %d to delete; groups %d to create, %d to update, %d to delete; memberships %d to add, %d to remove; %sat least %d requests.\n",
			s.CreateUsers, s.UpdateUsers, s.DisableUsers, s.DeleteUsers, s.CreateGroups, s.UpdateGroups, s.DeleteGroups, s.AddMembers, s.RemoveMembers, adopt, s.LowerBound)
		if leftOut != "" {
			fmt.Fprintf(&b, "Not in step with the source after this run: %s.\n", leftOut)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// unmatchedNote explains the deprovision of an object adopted by sync.adopt_unmatched.
const unmatchedNote = " [adopt_unmatched: its externalId matches no source record; left by the tool before scimbridge]"

func adoptNote(r Ref) string {
	if r.Adopted == AdoptedUnmatched {
		return unmatchedNote
	}
	return ""
}

func listRefs(b *strings.Builder, sign string, refs []Ref) {
	for i, r := range refs {
		if i == maxListed {
			fmt.Fprintf(b, "      %s ... and %d more\n", sign, len(refs)-maxListed)
			return
		}
		fmt.Fprintf(b, "      %s %s\n", sign, q(r.Name))
	}
}

func q(s string) string { return strconv.QuoteToGraphic(s) }

// Count writes n with the singular or the plural that follows it: "1 record", "2 records".
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
