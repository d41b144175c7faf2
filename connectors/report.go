package connectors

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

// maxFirstIDs is how many ids a report lists of the records it counts.
const maxFirstIDs = 5

// Report is what the mapping of a whole directory shows beyond the records it skipped: users that
// are synced without an attribute they are expected to have, and source attributes that the
// configuration names but no entry holds (most likely a typo, which maps an empty value for
// everyone). Neither stops a sync; `scimbridge check`, `mapping test` and every sync show them.
type Report struct {
	Missing []MissingTarget   `json:"missing,omitempty"`
	Absent  []AbsentAttribute `json:"absent,omitempty"`
}

// MissingTarget counts the synced users for which an expected target came out empty. Expected
// are email, whenever the mapping sets it (Identity Center sends its invitations and one-time
// passwords there), and every user target the configuration maps itself.
type MissingTarget struct {
	// Target is the user target, such as email; Key the expression's configuration key and line,
	// or the flavour default it comes from.
	Target string `json:"target"`
	Key    string `json:"key"`
	// Count of the Of users synced lack it; First are the first of their ids (externalId order).
	Count int      `json:"count"`
	Of    int      `json:"of"`
	First []string `json:"first"`
}

// AbsentAttribute is a source attribute that a mapping or scope expression of the configuration
// reads by name (attr("x"), values("x"), ...) and that no entry of its kind holds.
type AbsentAttribute struct {
	// Key is the expression's configuration key and line; Attribute the name it reads.
	Key       string `json:"key"`
	Attribute string `json:"attribute"`
	// Kind is user or group: the entries looked at, Entries of them.
	Kind    string `json:"kind"`
	Entries int    `json:"entries"`
	// Suggest is an attribute that entries do hold with a close name, if there is one.
	Suggest string `json:"suggest,omitempty"`
}

// Report works out the Report of the directory d and its snapshot snap (what Apply made of d).
func (m *Mapping) Report(d *Directory, snap scim.Snapshot) Report {
	var r Report
	for i, p := range m.user {
		t := &userTargets[i]
		if p == nil || t.get == nil || (t.name != "email" && !p.fromConfig()) {
			continue
		}
		mt := MissingTarget{Target: t.name, Key: p.where, Of: len(snap.Users)}
		for j := range snap.Users {
			if strings.TrimSpace(t.get(&snap.Users[j])) == "" {
				mt.Count++
				if len(mt.First) < maxFirstIDs {
					mt.First = append(mt.First, snap.Users[j].ExternalID)
				}
			}
		}
		if mt.Count > 0 {
			r.Missing = append(r.Missing, mt)
		}
	}

	var userProgs, groupProgs []*program
	for _, p := range m.user {
		if p != nil && p.fromConfig() {
			userProgs = append(userProgs, p)
		}
	}
	userProgs = appendConfig(userProgs, m.scope.userInclude, m.scope.userExclude)
	groupProgs = appendConfig(groupProgs, m.groupDisplayName, m.scope.groupInclude, m.scope.groupExclude)
	r.Absent = append(absent(scim.KindUser, d.Users, userProgs), absent(scim.KindGroup, d.Groups, groupProgs)...)
	return r
}

// appendConfig appends the programs that are set and come from the configuration.
func appendConfig(out []*program, ps ...*program) []*program {
	for _, p := range ps {
		if p != nil && p.fromConfig() {
			out = append(out, p)
		}
	}
	return out
}

// absent finds the attributes the programs read by name that none of the entries holds with a
// value. Nothing is reported when there are no entries.
func absent(kind string, entries []Entry, progs []*program) []AbsentAttribute {
	if len(entries) == 0 || len(progs) == 0 {
		return nil
	}
	var out []AbsentAttribute
	held := map[string]bool{} // attribute names met (as spelt), for suggestions; filled once
	for _, p := range progs {
		for _, name := range p.attributeNames() {
			if anyHolds(entries, name) {
				continue
			}
			if len(held) == 0 {
				for i := range entries {
					for k, v := range entries[i].Attributes {
						if hasValue(v) {
							held[k] = true
						}
					}
				}
			}
			out = append(out, AbsentAttribute{Key: p.where, Attribute: name, Kind: kind, Entries: len(entries), Suggest: closest(name, held)})
		}
	}
	return out
}

func anyHolds(entries []Entry, name string) bool {
	for i := range entries {
		if hasValue(entries[i].Values(name)) {
			return true
		}
	}
	return false
}

func hasValue(vs []string) bool {
	for _, v := range vs {
		if v != "" {
			return true
		}
	}
	return false
}

// closest returns the name in names nearest to name (ignoring case) when it is near enough to be
// a likely typo: at most 2 edits, and fewer than half of name's letters.
func closest(name string, names map[string]bool) string {
	best, bestD := "", 3
	lower := strings.ToLower(name)
	for n := range names {
		d := editDistance(lower, strings.ToLower(n))
		if d < bestD || (d == bestD && best != "" && n < best) {
			if d*2 < len(name) {
				best, bestD = n, d
			}
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b, in bytes: insertions,
// deletions, substitutions and swaps of two neighbours ("mial" is one edit from "mail").
func editDistance(a, b string) int {
	rows := [3][]int{make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)} // row k in rows[(k+1)%3]
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur, prev, pp := rows[(i+1)%3], rows[i%3], rows[(i+2)%3] // rows i, i-1 and i-2
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
	}
	return rows[(len(a)+1)%3][len(b)]
}

// Empty reports whether there is nothing to say.
func (r Report) Empty() bool { return len(r.Missing) == 0 && len(r.Absent) == 0 }

// Lines renders the report for a person, one finding a line.
func (r Report) Lines() []string {
	var out []string
	for _, m := range r.Missing {
		out = append(out, fmt.Sprintf("%d of %d users synced have no %s (%s; first: %s)", m.Count, m.Of, m.Target, m.Key, strings.Join(m.First, ", ")))
	}
	for _, a := range r.Absent {
		s := fmt.Sprintf("%s: attribute %q is on none of the %d %s entries read", a.Key, a.Attribute, a.Entries, a.Kind)
		if a.Suggest != "" {
			s += fmt.Sprintf(" (did you mean %q?)", a.Suggest)
		} else {
			s += " (is it spelt as the source spells it, and does the source read it?)"
		}
		out = append(out, s)
	}
	return out
}

// Log writes the report as warnings, one per finding.
func (r Report) Log(logger *slog.Logger) {
	for _, m := range r.Missing {
		logger.Warn("users synced without an expected attribute", "target", m.Target, "key", m.Key,
			"count", m.Count, "of", m.Of, "first", strings.Join(m.First, ","))
	}
	for _, a := range r.Absent {
		logger.Warn("a source attribute the configuration names is on no entry read", "key", a.Key,
			"attribute", a.Attribute, "kind", a.Kind, "entries", a.Entries, "suggest", a.Suggest)
	}
}
