package plan

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/golden"
)

// largeDirectory is n users in n/10 groups of ten; title sets every user's title.
func largeDirectory(n int, title func(i int) string) scim.Snapshot {
	var s scim.Snapshot
	for i := range n {
		s.Users = append(s.Users, scim.User{ExternalID: fmt.Sprintf("u-%04d", i), UserName: fmt.Sprintf("user%04d@example.com", i),
			DisplayName: fmt.Sprintf("User %d", i), GivenName: "User", FamilyName: fmt.Sprint(i), Title: title(i), Active: true})
	}
	for g := range n / 10 {
		grp := scim.Group{ExternalID: fmt.Sprintf("g-%03d", g), DisplayName: fmt.Sprintf("Team %03d", g)}
		for i := g * 10; i < g*10+10; i++ {
			grp.Members = append(grp.Members, fmt.Sprintf("u-%04d", i))
		}
		s.Groups = append(s.Groups, grp)
	}
	return scim.Normalize(s)
}

// TestLargePlanSummary: a plan longer than LargePlanLines is shown as its summary per kind, with
// the first entries of each and where the whole plan is; a short one as it is. Golden:
// testdata/large-summary.golden (rewrite with -update).
func TestLargePlanSummary(t *testing.T) {
	w := synced(t, largeDirectory(400, func(int) string { return "Engineer" }))
	// 120 new titles, 50 leavers, 30 joiners, and the members that follow.
	next := largeDirectory(430, func(i int) string {
		if i%3 == 0 && i < 360 {
			return "Senior Engineer"
		}
		return "Engineer"
	})
	next.Users = next.Users[50:]
	for gi := range next.Groups {
		g := &next.Groups[gi]
		var kept []string
		for _, m := range g.Members {
			if m >= "u-0050" {
				kept = append(kept, m)
			}
		}
		g.Members = kept
	}
	next.Groups = next.Groups[1:] // the first team is gone
	p := compute(w, scim.Normalize(next), Options{})
	var full, short bytes.Buffer
	if err := p.WriteText(&full, 100); err != nil {
		t.Fatal(err)
	}
	shortened, err := p.WriteTextShort(&short, 100, LargePlanLines, EntriesPerKind, "the whole plan is in plan.txt; --detail prints it here")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(full.String(), "\n"); !shortened || lines <= LargePlanLines {
		t.Fatalf("got shortened=%v for a plan of %d lines, want a plan over %d lines shortened", shortened, lines, LargePlanLines)
	}
	if got := strings.Count(short.String(), "\n"); got > 80 {
		t.Errorf("the summary takes %d lines, want at most 80", got)
	}
	// The summary line is the full plan's.
	lastLine := func(s string) string { l := strings.Split(strings.TrimSpace(s), "\n"); return l[len(l)-1] }
	if got, want := lastLine(short.String()), lastLine(full.String()); got != want {
		t.Errorf("summary line: got %q, want %q", got, want)
	}
	golden.Check(t, filepath.Join("testdata", "large-summary.golden"), short.Bytes())

	// A short plan is written whole.
	small := compute(newWorld(), largeDirectory(10, func(int) string { return "" }), Options{})
	var a, b bytes.Buffer
	_ = small.WriteText(&a, 100)
	shortened, _ = small.WriteTextShort(&b, 100, LargePlanLines, EntriesPerKind, "x")
	if shortened || a.String() != b.String() {
		t.Errorf("a plan of %d lines was shortened (%v) or changed:\n%s", strings.Count(a.String(), "\n"), shortened, b.String())
	}
}

func TestEntryKind(t *testing.T) {
	for line, want := range map[string]string{
		`  + user "a@b" (u-1)`:                      "+ user",
		`  ~ members of "Team" (g-1): +3 -1`:        "~ members of",
		`  = adopt group "G" (g) [matched by name]`: "= adopt group",
		`  ! disable user "x" (u-2)`:                "! disable user",
		`  ~ group "A" -> "B" (g-2)`:                "~ group",
		`  ? user u-3: userName: empty`:             "? user",
	} {
		if got := entryKind(line); got != want {
			t.Errorf("entryKind(%q) = %q, want %q", line, got, want)
		}
	}
}
