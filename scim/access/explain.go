package access

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

// Explanation says which accounts and permission sets one person or group reaches, through
// which groups and rules: what `scimbridge access explain` prints.
type Explanation struct {
	Principal PrincipalRef `json:"principal"`
	// Groups are the groups of the source the user is a member of (for a user).
	Groups []string `json:"groups,omitempty"`
	// Grants are the assignments the rules give, directly or through a group (Via).
	Grants []Grant `json:"grants"`
	// Problems are what the rules name but the organization or source lacks.
	Problems []scim.Problem `json:"problems,omitempty"`
}

// Explain evaluates the rules against the desired snapshot and the organization and keeps the
// grants that reach the user (by userName) or group (by displayName) named, case-insensitively.
func Explain(rules []Rule, snap scim.Snapshot, org *Organization, t PrincipalType, name string) (*Explanation, error) {
	grants, problems := Evaluate(rules, snap, org)
	ex := &Explanation{Grants: []Grant{}, Problems: problems}
	groupOf := map[string]string{} // group externalId -> name, of the groups that count
	switch t {
	case PrincipalUser:
		i := slices.IndexFunc(snap.Users, func(u scim.User) bool { return strings.EqualFold(u.UserName, name) })
		if i < 0 {
			return nil, fmt.Errorf("access explain: no user of the source has the userName %q", name)
		}
		u := snap.Users[i]
		ex.Principal = PrincipalRef{Type: PrincipalUser, ExternalID: u.ExternalID, Name: u.UserName}
		for _, g := range snap.Groups {
			if slices.Contains(g.Members, u.ExternalID) {
				groupOf[g.ExternalID] = g.DisplayName
				ex.Groups = append(ex.Groups, g.DisplayName)
			}
		}
		slices.Sort(ex.Groups)
	case PrincipalGroup:
		i := slices.IndexFunc(snap.Groups, func(g scim.Group) bool { return strings.EqualFold(g.DisplayName, name) })
		if i < 0 {
			return nil, fmt.Errorf("access explain: no group of the source is named %q", name)
		}
		g := snap.Groups[i]
		ex.Principal = PrincipalRef{Type: PrincipalGroup, ExternalID: g.ExternalID, Name: g.DisplayName}
		groupOf[g.ExternalID] = g.DisplayName
	default:
		return nil, fmt.Errorf("access explain: principal type %q is not USER or GROUP", t)
	}
	for _, g := range grants {
		switch {
		case g.Principal.Type == PrincipalUser && g.Principal.ExternalID == ex.Principal.ExternalID:
		case g.Principal.Type == PrincipalGroup && groupOf[g.Principal.ExternalID] != "":
			if t == PrincipalUser {
				g.Via = g.Principal.Name
			}
		default:
			continue
		}
		ex.Grants = append(ex.Grants, g)
	}
	slices.SortFunc(ex.Grants, func(a, b Grant) int {
		return cmp.Or(cmp.Compare(a.AccountID, b.AccountID), cmp.Compare(a.PermissionSet, b.PermissionSet), cmp.Compare(a.Via, b.Via))
	})
	return ex, nil
}

// WriteText writes the explanation for a person.
func (ex *Explanation) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)", principal(ex.Principal), ex.Principal.ExternalID)
	if ex.Principal.Type == PrincipalUser {
		if len(ex.Groups) == 0 {
			b.WriteString(", in no group of the source,")
		} else {
			qs := make([]string, len(ex.Groups))
			for i, g := range ex.Groups {
				qs[i] = q(g)
			}
			fmt.Fprintf(&b, ", member of %s,", strings.Join(qs, ", "))
		}
	}
	accounts := map[string]bool{}
	for _, g := range ex.Grants {
		accounts[g.AccountID] = true
	}
	fmt.Fprintf(&b, " reaches %d permission set assignments on %d accounts:\n", len(ex.Grants), len(accounts))
	for _, g := range ex.Grants {
		via := "directly"
		if g.Via != "" {
			via = "through group " + q(g.Via)
		}
		fmt.Fprintf(&b, "  %s on %s %s [%s]\n", q(g.PermissionSet), account(g.AccountID, g.AccountName), via, strings.Join(g.Rules, ", "))
	}
	if len(ex.Problems) > 0 {
		fmt.Fprintf(&b, "\nProblems of the rules (%d):\n", len(ex.Problems))
		for _, p := range ex.Problems {
			fmt.Fprintf(&b, "  ? %s\n", p.Error())
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the explanation as indented JSON.
func (ex *Explanation) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ex)
}
