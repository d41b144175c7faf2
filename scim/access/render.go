package access

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Summary counts an access plan's changes.
type Summary struct {
	CreatePermissionSets    int `json:"createPermissionSets"`
	UpdatePermissionSets    int `json:"updatePermissionSets"`
	ProvisionPermissionSets int `json:"provisionPermissionSets"`
	DeletePermissionSets    int `json:"deletePermissionSets"`
	CreateAssignments       int `json:"createAssignments"`
	DeleteAssignments       int `json:"deleteAssignments"`
	Problems                int `json:"problems"`
	// Requests is the fewest write requests that start the plan's operations: one per
	// assignment, one per permission set created, updated, provisioned or deleted (the attaching of
	// each policy and tag adds its own), status polls not counted.
	Requests int `json:"requests"`
}

// Summarize counts the plan's changes.
func (p *Plan) Summarize() Summary {
	return Summary{
		CreatePermissionSets:    len(p.CreatePermissionSets),
		UpdatePermissionSets:    len(p.UpdatePermissionSets),
		ProvisionPermissionSets: len(p.ProvisionPermissionSets),
		DeletePermissionSets:    len(p.DeletePermissionSets),
		CreateAssignments:       len(p.CreateAssignments),
		DeleteAssignments:       len(p.DeleteAssignments),
		Problems:                len(p.Problems),
		Requests:                p.Writes(),
	}
}

// jsonPlan is the stable JSON form of an access plan.
type jsonPlan struct {
	*Plan
	Summary Summary `json:"summary"`
}

// MarshalJSON is not defined on Plan (it would recurse); JSON returns the plan with its summary,
// for embedding in a larger document.
func (p *Plan) JSON() any { return jsonPlan{Plan: p, Summary: p.Summarize()} }

// WriteJSON writes the plan as indented, stable JSON with its summary.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p.JSON())
}

// WriteText writes the access part of a plan for a person, in the manner of the users and
// groups plan (`+` create, `~` update with the fields that change, `-` delete), ending with a
// summary line.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	s := p.Summarize()
	if !p.Empty() {
		b.WriteString("Access (permission sets and account assignments):\n\n")
	}
	for _, c := range p.ClaimPermissionSets {
		fmt.Fprintf(&b, "  = permission set %s [created by an earlier run that never saw the answer: recorded as owned, no request]\n", q(c.Name))
	}
	for _, ps := range p.CreatePermissionSets {
		fmt.Fprintf(&b, "  + permission set %s%s\n", q(ps.Name), describe(ps))
	}
	for _, u := range p.UpdatePermissionSets {
		fmt.Fprintf(&b, "  ~ permission set %s\n", q(u.Name))
		for _, f := range u.Fields {
			fmt.Fprintf(&b, "      %s: %s -> %s\n", f.Name, q(f.From), q(f.To))
		}
	}
	for _, ps := range p.ProvisionPermissionSets {
		retry := ""
		if ps.Retry {
			retry = " [an earlier run updated it, but its provisioning FAILED or did not finish]"
		}
		fmt.Fprintf(&b, "  ~ provision permission set %s to every account that has it%s\n", q(ps.Name), retry)
	}
	for _, c := range p.CreateAssignments {
		fmt.Fprintf(&b, "  + assign %s %s on %s [%s]\n", principal(c.Principal), q(c.PermissionSet), account(c.AccountID, c.AccountName), strings.Join(c.Rules, ", "))
	}
	for _, c := range p.DeleteAssignments {
		fmt.Fprintf(&b, "  - assign %s %s on %s [no rule wants it]\n", principal(c.Principal), q(c.PermissionSet), account(c.AccountID, c.AccountName))
	}
	for _, ps := range p.DeletePermissionSets {
		fmt.Fprintf(&b, "  - permission set %s [no longer in access.permission_sets]\n", q(ps.Name))
	}
	if len(p.Problems) > 0 {
		if !p.Empty() {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Access problems (%d; the rest of the access is planned):\n", len(p.Problems))
		for _, pr := range p.Problems {
			fmt.Fprintf(&b, "  ? %s\n", pr.Error())
		}
	}
	if !p.Empty() || len(p.Problems) > 0 {
		b.WriteString("\n")
	}
	unmanaged := fmt.Sprintf("%d assignments and %d permission sets not managed by scimbridge left alone", p.UnmanagedAssignments, p.UnmanagedPermissionSets)
	if p.Empty() {
		fmt.Fprintf(&b, "No access changes. The instance holds the %d assignments the rules ask for (%s).\n", p.Desired, unmanaged)
	} else {
		fmt.Fprintf(&b, "Access plan: permission sets %d to create, %d to update, %d to provision, %d to delete; assignments %d to create, %d to delete; %s.\n",
			s.CreatePermissionSets, s.UpdatePermissionSets, s.ProvisionPermissionSets, s.DeletePermissionSets, s.CreateAssignments, s.DeleteAssignments, unmanaged)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describe(ps PermissionSet) string {
	var parts []string
	if len(ps.ManagedPolicies) > 0 {
		parts = append(parts, "managed "+strings.Join(ps.ManagedPolicies, ", "))
	}
	if len(ps.CustomerManagedPolicies) > 0 {
		parts = append(parts, "customer managed "+customerList(ps.CustomerManagedPolicies))
	}
	if ps.InlinePolicy != "" {
		parts = append(parts, "inline policy "+policySummary(ps.InlinePolicy))
	}
	parts = append(parts, "session "+ps.SessionDuration)
	return " (" + strings.Join(parts, "; ") + ")"
}

func principal(r PrincipalRef) string {
	s := strings.ToLower(string(r.Type)) + " " + q(r.Name)
	if r.Created {
		s += " (created in this run)"
	}
	return s
}

func account(id, name string) string {
	if name == "" {
		return id
	}
	return id + " (" + name + ")"
}

func q(s string) string { return strconv.QuoteToGraphic(s) }
