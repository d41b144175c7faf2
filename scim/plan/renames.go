package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
)

// rename is one object's change of name in a plan, and how it is ordered.
type rename struct {
	ext, to, self string
	active        bool   // the name changes
	reason        string // why it cannot be made; "" when it can
	holder        string // target id of the matched object that holds the name now
	after         int    // index of the rename that must go first; -1 for none
	temp          string // temporary name that breaks a cycle
}

// resolveRenames decides for each rename whether it can be made and in what order; idx maps the
// target id of each renamed object to its index in rs. held returns the target id of the
// matched object holding a name, or why the name is not free.
// A rename onto a name that a matched object gives up in this run goes after that object's
// rename; a cycle of such renames is broken at its member with the smallest externalId, which is
// first renamed to a temporary name. taken tells whether a name exists in the target.
func resolveRenames(rs []rename, idx map[string]int, what string, held func(name, self string) (string, string), taken func(string) bool) {
	for i := range rs {
		rs[i].after = -1
		if rs[i].active {
			rs[i].holder, rs[i].reason = held(rs[i].to, rs[i].self)
		}
	}
	// A name held by a matched object that keeps it (or whose own rename cannot be made) is not
	// free; this spreads along chains.
	for changed := true; changed; {
		changed = false
		for i := range rs {
			r := &rs[i]
			if !r.active || r.reason != "" || r.holder == "" {
				continue
			}
			if j, ok := idx[r.holder]; !ok || !rs[j].active || rs[j].reason != "" {
				r.reason = "is held by another " + what + " of this sync that keeps it in this run"
				changed = true
			}
		}
	}
	for i := range rs {
		if r := &rs[i]; r.active && r.reason == "" && r.holder != "" {
			r.after = idx[r.holder]
		}
	}
	// Each rename waits for at most one other, and at most one waits for it: the waits form
	// chains and cycles.
	seen := make([]int8, len(rs)) // 0 not yet, 1 on the path being followed, 2 done
	for i := range rs {
		if seen[i] != 0 || rs[i].after < 0 {
			continue
		}
		var path []int
		j := i
		for j >= 0 && seen[j] == 0 {
			seen[j] = 1
			path = append(path, j)
			j = rs[j].after
		}
		if j >= 0 && seen[j] == 1 {
			cycle := path[slices.Index(path, j):]
			b := slices.MinFunc(cycle, func(x, y int) int { return strings.Compare(rs[x].ext, rs[y].ext) })
			rs[b].temp = tempName(rs[b].ext, taken)
			for _, k := range cycle {
				if rs[k].after == b {
					rs[k].after = -1 // the temporary rename frees b's name first
				}
			}
		}
		for _, k := range path {
			seen[k] = 2
		}
	}
}

// tempName is the temporary name of a rename that breaks a cycle: "scimbridge-swap-" and 16 hex
// digits of the SHA-256 of the externalId, with "-2", "-3", ... when the target holds it already.
func tempName(ext string, taken func(string) bool) string {
	sum := sha256.Sum256([]byte(ext))
	base := "scimbridge-swap-" + hex.EncodeToString(sum[:8])
	name := base
	for n := 2; taken(name); n++ {
		name = base + "-" + strconv.Itoa(n)
	}
	return name
}
