package connectors

import (
	"errors"
	"fmt"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

// ErrNotFound is returned by Explain when no entry has the id or key asked for.
var ErrNotFound = errors.New("no such entry")

// Explanation shows what the mapping makes of one entry: for `scimbridge mapping test`.
type Explanation struct {
	// Kind is "user" or "group".
	Kind string `json:"kind"`
	// Entry is the source entry as the connector read it.
	Entry Entry `json:"entry"`
	// InScope is true when the entry is in scope and mapped without a fatal problem.
	InScope bool `json:"inScope"`
	// Scope says why the entry is, or is not, in scope.
	Scope string `json:"scope"`
	// User or Group is the record that would be sent, after references, flattening and
	// normalisation; nil when none would be.
	User  *scim.User  `json:"user,omitempty"`
	Group *scim.Group `json:"group,omitempty"`
	// Problems are the problems reported for this entry (fatal ones have Dropped set).
	Problems []scim.Problem `json:"problems,omitempty"`
	// Flavour and Mapping are the flavour and every target the mapping maps, with its expression.
	Flavour string         `json:"flavour"`
	Mapping []MappedTarget `json:"mapping"`
	// Report is what the mapping of the whole directory shows: users synced without an expected
	// attribute, attributes the configuration names that no entry holds.
	Report Report `json:"report"`
}

// Explain maps the whole directory, as Apply does (references and nested groups need it), and
// explains the entry whose ID, or failing that one of whose Keys, is id. It returns an error
// wrapping ErrNotFound when no entry matches.
func (m *Mapping) Explain(d *Directory, id string) (Explanation, error) {
	kind, i := "", -1
	for j := range d.Users {
		if d.Users[j].ID == id {
			kind, i = scim.KindUser, j
			break
		}
	}
	if i < 0 {
		for j := range d.Groups {
			if d.Groups[j].ID == id {
				kind, i = scim.KindGroup, j
				break
			}
		}
	}
	if i < 0 {
		if x, ok := newRefIndex(d).resolve(id); ok {
			kind, i = scim.KindUser, int(x.idx)
			if x.group {
				kind = scim.KindGroup
			}
		}
	}
	if i < 0 {
		return Explanation{}, fmt.Errorf("explain %q: %w among %d users and %d groups", id, ErrNotFound, len(d.Users), len(d.Groups))
	}
	r := m.run(d)
	var ex Explanation
	var st scopeState
	if kind == scim.KindUser {
		ex.Entry, st = d.Users[i], r.userState[i]
	} else {
		ex.Entry, st = d.Groups[i], r.groupState[i]
	}
	ex.Kind = kind
	for _, p := range r.snapshot.Skipped {
		if p.Kind == kind && p.ID == ex.Entry.ID {
			ex.Problems = append(ex.Problems, p)
		}
	}
	if kind == scim.KindUser {
		for j := range r.snapshot.Users {
			if r.snapshot.Users[j].ExternalID == ex.Entry.ID {
				u := r.snapshot.Users[j]
				ex.User = &u
				break
			}
		}
		ex.InScope = ex.User != nil
	} else {
		for j := range r.snapshot.Groups {
			if r.snapshot.Groups[j].ExternalID == ex.Entry.ID {
				g := r.snapshot.Groups[j]
				ex.Group = &g
				break
			}
		}
		ex.InScope = ex.Group != nil
	}
	ex.Scope = stateText[st]
	if st == stateIn && !ex.InScope {
		ex.Scope = stateText[stateFailed]
	}
	ex.Flavour, ex.Mapping, ex.Report = m.flavour, m.Targets(), m.Report(d, r.snapshot)
	return ex, nil
}

// String renders the explanation for a terminal.
func (ex Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q: %s\n", ex.Kind, ex.Entry.ID, ex.Scope)
	if ex.User != nil {
		u := ex.User
		row := func(k, v string) {
			if v != "" {
				fmt.Fprintf(&b, "  %-18s %s\n", k, v)
			}
		}
		// Every attribute that has a value, by its configuration key, in the table's order;
		// the address on one line at the end.
		var address []string
		for _, a := range scim.UserAttributes() {
			switch {
			case a.Bool:
				fmt.Fprintf(&b, "  %-18s %t\n", a.Key, u.Active)
			case a.Address:
				if a.Key != "address.type" {
					address = append(address, a.Get(u))
				}
			case a.Key == "":
				row(a.Path, a.Get(u))
			default:
				row(a.Key, a.Get(u))
			}
		}
		row("address", strings.Join(nonEmpty(address...), ", "))
	}
	if ex.Group != nil {
		fmt.Fprintf(&b, "  %-18s %s\n  %-18s %d user(s)\n", "displayName", ex.Group.DisplayName, "members", len(ex.Group.Members))
	}
	for _, p := range ex.Problems {
		fmt.Fprintf(&b, "  problem: %s\n", p.Error())
	}
	if len(ex.Mapping) > 0 {
		fmt.Fprintf(&b, "  mapping (%s flavour; * = from the configuration):\n", ex.Flavour)
		for _, t := range ex.Mapping {
			if t.Kind != ex.Kind {
				continue
			}
			mark := " "
			if t.FromConfig {
				mark = "*"
			}
			fmt.Fprintf(&b, "   %s%-18s %s\n", mark, t.Target, t.Expression)
		}
	}
	for _, line := range ex.Report.Lines() {
		fmt.Fprintf(&b, "  warning (all entries read): %s\n", line)
	}
	return b.String()
}

func nonEmpty(s ...string) []string {
	out := s[:0:0]
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
