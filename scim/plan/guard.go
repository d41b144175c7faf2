package plan

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

// Guards are the safety limits a plan must pass before anything is written. They count users
// deleted or disabled and groups deleted, and the attributes that updates clear, against the
// objects scimbridge owns. Every guard that a plan trips is reported at once, with the flags that
// let the run through.
type Guards struct {
	// MaxDeletes blocks a run that would deprovision more than this many users, or delete more
	// than this many groups. Negative disables the limit.
	MaxDeletes int `json:"maxDeletes"`
	// MaxDeletePercent blocks a run that would deprovision more than this share of the owned
	// users, or delete more than this share of the owned groups. Negative disables the limit.
	MaxDeletePercent float64 `json:"maxDeletePercent"`
	// AllowDeletes lets a run past MaxDeletes and MaxDeletePercent when it deprovisions at most
	// this many objects in all: a person's explicit consent (`--allow-deletes N`). It does not
	// let an empty source through (see AllowEmptySource).
	AllowDeletes int `json:"allowDeletes"`
	// MaxClearPercent blocks a run whose updates would clear one attribute (a non-empty value
	// becomes empty) on more than this share of the owned users, and on at least MinClears of
	// them: a mapping typo such as attr("mial") blanks that attribute for everyone. Users adopted
	// by the run count among the owned. Negative disables the limit.
	MaxClearPercent float64 `json:"maxClearPercent"`
	// AllowClears names the attributes (as ClearAttribute accepts them) whose clears the run
	// lets through whatever MaxClearPercent says (`--allow-clears emails,title`).
	AllowClears []string `json:"allowClears,omitempty"`
	// AllowEmptySource lets a run deprovision when the source is empty or near-empty (see
	// NearEmptyPercent): a person's explicit consent that the directory really is (almost)
	// empty (`--allow-empty-source`). The count limits still apply.
	AllowEmptySource bool `json:"allowEmptySource,omitempty"`
}

// DefaultGuards are on unless configured otherwise.
var DefaultGuards = Guards{MaxDeletes: 100, MaxDeletePercent: 20, MaxClearPercent: 10}

// MinClears is the fewest users whose clears of one attribute can block a run: in a directory
// of a few people one person's phone number removed is already a large share.
const MinClears = 3

// NearEmptyPercent defines a near-empty source: one that holds fewer users (or groups) than
// this share of the users (or groups) scimbridge owns, or none at all. A plan that would
// deprovision from such a source is taken for a broken read (an empty file, a wrong base DN, a
// filter that matches nothing) and blocked unless AllowEmptySource is set.
const NearEmptyPercent = 10

// BlockedError is returned by Check when a guard stops the run.
type BlockedError struct {
	// Reason lists every guard the plan trips, separated by "; ".
	Reason string
	// Users and Groups are the deprovisions the plan holds.
	Users, Groups int
	// Clears maps each attribute that blocked the run to the number of users it would clear.
	Clears map[string]int
	// EmptySource is set when the source is empty or near-empty.
	EmptySource bool
	// Flags are the command-line flags that let this plan through, in the order to give them.
	Flags []string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("blocked by a safety guard: %s; nothing was written (review the plan, then re-run with %s to let it through)", e.Reason, strings.Join(e.Flags, " "))
}

// Check evaluates the guards against the plan. It returns a *BlockedError when the run must not
// go ahead: it names every guard the plan trips and not allowed, and lists every flag the plan
// needs (those already given included), so that one re-run with them goes through.
func (g Guards) Check(p *Plan) error {
	users, groups := p.Deprovisions()
	be := &BlockedError{Users: users, Groups: groups}
	var reasons []string

	var empty []string
	if users > 0 && nearEmpty(p.DesiredUsers, p.OwnedUsers) {
		empty = append(empty, emptyReason("users", p.DesiredUsers, p.OwnedUsers, users, "deprovision"))
	}
	if groups > 0 && nearEmpty(p.DesiredGroups, p.OwnedGroups) {
		empty = append(empty, emptyReason("groups", p.DesiredGroups, p.OwnedGroups, groups, "delete"))
	}
	if len(empty) > 0 {
		be.Flags = append(be.Flags, "--allow-empty-source")
		if !g.AllowEmptySource {
			be.EmptySource = true
			reasons = append(reasons, empty...)
		}
	}

	if over := g.deleteReasons(p, users, groups); len(over) > 0 {
		total := users + groups
		be.Flags = append(be.Flags, "--allow-deletes "+strconv.Itoa(total))
		if total > g.AllowDeletes {
			reasons = append(reasons, over...)
		}
	}

	if g.MaxClearPercent >= 0 {
		matched := p.OwnedUsers + p.adoptedUsers()
		clears := p.Clears()
		var names []string
		for _, name := range slices.Sorted(maps.Keys(clears)) {
			n := clears[name]
			pct := percent(n, matched)
			if n < MinClears || pct <= g.MaxClearPercent {
				continue
			}
			names = append(names, name)
			if g.allowsClear(name) {
				continue
			}
			reasons = append(reasons, fmt.Sprintf("updates would clear %s on %d of the %d users scimbridge owns (%.1f%%), more than max_clear_percent (%g%%); a mapping that names a source attribute no entry has does this",
				describeAttribute(name), n, matched, pct, g.MaxClearPercent))
			if be.Clears == nil {
				be.Clears = map[string]int{}
			}
			be.Clears[name] = n
		}
		if len(names) > 0 {
			be.Flags = append(be.Flags, "--allow-clears "+strings.Join(names, ","))
		}
	}

	if len(reasons) == 0 {
		return nil
	}
	be.Reason = strings.Join(reasons, "; ")
	return be
}

// deleteReasons reports the count and share limits a plan's deprovisions exceed: the first limit
// for users and the first for groups.
func (g Guards) deleteReasons(p *Plan, users, groups int) []string {
	var out []string
	switch {
	case g.MaxDeletes >= 0 && users > g.MaxDeletes:
		out = append(out, fmt.Sprintf("%d users would be deprovisioned, more than max_deletes (%d)", users, g.MaxDeletes))
	case g.MaxDeletePercent >= 0 && percent(users, p.OwnedUsers) > g.MaxDeletePercent:
		out = append(out, fmt.Sprintf("%d of %d owned users (%.1f%%) would be deprovisioned, more than max_delete_percent (%g%%)", users, p.OwnedUsers, percent(users, p.OwnedUsers), g.MaxDeletePercent))
	}
	switch {
	case g.MaxDeletes >= 0 && groups > g.MaxDeletes:
		out = append(out, fmt.Sprintf("%d groups would be deleted, more than max_deletes (%d)", groups, g.MaxDeletes))
	case g.MaxDeletePercent >= 0 && percent(groups, p.OwnedGroups) > g.MaxDeletePercent:
		out = append(out, fmt.Sprintf("%d of %d owned groups (%.1f%%) would be deleted, more than max_delete_percent (%g%%)", groups, p.OwnedGroups, percent(groups, p.OwnedGroups), g.MaxDeletePercent))
	}
	return out
}

// nearEmpty reports whether a source holding desired objects is empty or near-empty next to the
// owned ones.
func nearEmpty(desired, owned int) bool {
	return owned > 0 && (desired == 0 || 100*desired < NearEmptyPercent*owned)
}

func emptyReason(kind string, desired, owned, gone int, verb string) string {
	if desired == 0 {
		return fmt.Sprintf("the source holds no %s, and the plan would %s %d of the %d %s scimbridge owns (an empty source usually means a failed or misconfigured read)", kind, verb, gone, owned, kind)
	}
	return fmt.Sprintf("the source holds only %d %s, fewer than %d%% of the %d %s scimbridge owns (near-empty), and the plan would %s %d of them (a near-empty source usually means a failed or misconfigured read)", desired, kind, NearEmptyPercent, owned, kind, verb, gone)
}

// Clears counts, by attribute, the users whose update clears it: a non-empty value that becomes
// empty. The type sub-attributes (emails.type, ...) go with their value and are not counted.
func (p *Plan) Clears() map[string]int {
	var out map[string]int
	for _, u := range p.UpdateUsers {
		for _, f := range u.Fields {
			if f.From == "" || f.To != "" || f.Name == "active" || strings.HasSuffix(f.Name, ".type") {
				continue
			}
			if out == nil {
				out = map[string]int{}
			}
			out[f.Name]++
		}
	}
	return out
}

func (p *Plan) adoptedUsers() int {
	n := 0
	for _, u := range p.UpdateUsers {
		if u.Adopted != "" {
			n++
		}
	}
	return n
}

func (g Guards) allowsClear(name string) bool {
	for _, a := range g.AllowClears {
		if c, ok := ClearAttribute(a); ok && c == name {
			return true
		}
	}
	return false
}

// mappingNames maps the SCIM attribute names the plan shows to the configuration's keys where
// they differ (see scim.UserAttributes).
var mappingNames = func() map[string]string {
	out := map[string]string{}
	for _, a := range scim.UserAttributes() {
		if a.Key != "" && a.Key != a.Path {
			out[a.Path] = a.Key
		}
	}
	return out
}()

// ClearAttribute returns the SCIM name of a user attribute (as the plan shows it: emails,
// name.middleName, title, manager, ...) given either that name or the mapping target name
// (email, middleName, ...), case-insensitively; ok is false for an unknown name.
func ClearAttribute(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	for _, a := range (scim.User{}).Attributes() {
		if strings.EqualFold(name, a.Name) || strings.EqualFold(name, mappingNames[a.Name]) {
			return a.Name, true
		}
	}
	return "", false
}

// describeAttribute names an attribute as the plan shows it, and as the mapping does where that
// differs.
func describeAttribute(name string) string {
	if m, ok := mappingNames[name]; ok {
		return fmt.Sprintf("%s (mapping target %s)", name, m)
	}
	return name
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
