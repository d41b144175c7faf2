package plan

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/file"
	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/golden"
)

// quickstart is the quickstart directory (deploy/examples/directory.yaml) read through the file
// connector and mapped by the file flavour's default mapping, as `scimbridge sync` with the
// quickstart config does.
func quickstart(t *testing.T) scim.Snapshot {
	t.Helper()
	const path = "../../deploy/examples/directory.yaml"
	src, err := file.Config{Path: path}.Open(nil)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer src.Close()
	dir, err := src.Read(context.Background())
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	m, err := connectors.Compile(file.Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
	if err != nil {
		t.Fatalf("compile the file flavour's mapping: %v", err)
	}
	snap := scim.Normalize(m.Apply(dir))
	if len(snap.Users) < 15 || len(snap.Groups) < 6 || len(snap.Skipped) != 0 {
		t.Fatalf("quickstart: got %d users, %d groups, %d skipped; want at least 15 and 6, none skipped", len(snap.Users), len(snap.Groups), len(snap.Skipped))
	}
	return snap
}

// renderPlan is a plan's golden form: its text, then its JSON.
func renderPlan(t *testing.T, p *Plan) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("=== text\n")
	if err := p.WriteText(&b, 100); err != nil {
		t.Fatal(err)
	}
	b.WriteString("=== json\n")
	if err := p.WriteJSON(&b, 100); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func checkPlan(t *testing.T, name string, p *Plan) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name+".golden"), renderPlan(t, p))
}

// synced is a world holding the quickstart as a first sync left it.
func synced(t *testing.T, desired scim.Snapshot) *world {
	t.Helper()
	w := newWorld()
	w.apply(t, compute(w, desired, Options{}))
	return w
}

// churn edits the synced quickstart's directory and target the way a busy week does: a rename
// (userName and email), a swap of two userNames, two leavers, a directory disable, members moved
// between groups, a group renamed, one dropped and one added, a new hire, a skipped record, an
// unowned user left by the previous tool with a new hire's externalId (adopted), an unowned user
// holding another new hire's userName (a clash), and a Control Tower group scimbridge never touches.
func churn(t *testing.T) (*world, scim.Snapshot) {
	t.Helper()
	base := quickstart(t)
	w := synced(t, base)
	d := scim.Snapshot{Users: slices.Clone(base.Users), Groups: slices.Clone(base.Groups)}
	for i := range d.Groups {
		d.Groups[i].Members = slices.Clone(d.Groups[i].Members)
	}
	userAt := func(ext string) *scim.User {
		for i := range d.Users {
			if d.Users[i].ExternalID == ext {
				return &d.Users[i]
			}
		}
		t.Fatalf("quickstart lacks user %s", ext)
		return nil
	}
	groupAt := func(ext string) *scim.Group {
		for i := range d.Groups {
			if d.Groups[i].ExternalID == ext {
				return &d.Groups[i]
			}
		}
		t.Fatalf("quickstart lacks group %s", ext)
		return nil
	}
	// Ada marries: a new userName and email on the same object.
	ada := userAt("u-1002")
	ada.UserName, ada.Email = "ada.king@example.com", "ada.king@example.com"
	// Two people swap userNames.
	a, b := userAt("u-1008"), userAt("u-1009")
	a.UserName, b.UserName = b.UserName, a.UserName
	// Katherine is disabled in the directory.
	userAt("u-1003").Active = false
	// Two leavers; u-1014 is a skipped record (its target object stays as it is).
	leavers := map[string]bool{"u-1011": true, "u-1012": true, "u-1014": true}
	d.Users = slices.DeleteFunc(d.Users, func(u scim.User) bool { return leavers[u.ExternalID] })
	for i := range d.Groups {
		d.Groups[i].Members = slices.DeleteFunc(d.Groups[i].Members, func(m string) bool { return leavers[m] && m != "u-1014" })
	}
	d.Skipped = []scim.Problem{{Kind: scim.KindUser, ID: "u-1014", Field: "emails", Reason: "value is not valid UTF-8", Dropped: true}}
	// u-1010 moves from Engineering to Finance.
	eng := groupAt("g-engineering")
	eng.Members = slices.DeleteFunc(eng.Members, func(m string) bool { return m == "u-1010" })
	fin := groupAt("g-finance")
	fin.Members = append(fin.Members, "u-1010")
	// SRE is renamed, Everyone dropped, Security added with a new hire and an adopted one.
	groupAt("g-sre").DisplayName = "Site Reliability"
	d.Groups = slices.DeleteFunc(d.Groups, func(g scim.Group) bool { return g.ExternalID == "g-everyone" })
	hire := user("u-2001", "edsger.dijkstra")
	adopted := user("u-2002", "tony.hoare")
	clashing := user("u-2003", "niklaus.wirth")
	d.Users = append(d.Users, hire, adopted, clashing)
	d.Groups = append(d.Groups, scim.Group{ExternalID: "g-security", DisplayName: "Security", Members: []string{"u-2001", "u-2002", "u-1015"}})
	// The previous tool left Tony with his source id and an older title; Niklaus was made by hand.
	old := adopted
	old.Title = "Researcher"
	w.addUser(old, false)
	byHand := clashing
	byHand.ExternalID = ""
	w.addUser(byHand, false)
	w.addGroup("", "AWSControlTowerAdmins", false)
	return w, d
}

// TestGoldenPlans keeps the plans of the quickstart and of a churn case, in every policy and
// deprovisioning mode, in testdata/*.golden (text and JSON). Rewrite them with -update and read
// the diff: it is exactly how a change alters what a run would do.
func TestGoldenPlans(t *testing.T) {
	t.Run("quickstart", func(t *testing.T) {
		desired := quickstart(t)
		w := newWorld()
		first := compute(w, desired, Options{})
		checkPlan(t, "quickstart-initial", first)
		w.apply(t, first)
		again := compute(w, desired, Options{})
		checkPlan(t, "quickstart-nochange", again)
		if !again.Empty() {
			t.Errorf("quickstart against itself: got %d writes, want none", again.Writes())
		}
	})
	for _, policy := range []Policy{PolicySync, PolicyUpsertOnly, PolicyCreateOnly} {
		for _, deprovision := range []Deprovision{DeprovisionDelete, DeprovisionDisable} {
			name := "churn-" + string(policy) + "-" + string(deprovision)
			t.Run(name, func(t *testing.T) {
				w, desired := churn(t)
				p := compute(w, desired, Options{Policy: policy, Deprovision: deprovision, Adopt: AdoptExternalID})
				checkPlan(t, name, p)
				if len(p.Clashes) != 1 || p.Adoptions() != 1 {
					t.Errorf("got %d clashes and %d adoptions, want 1 and 1", len(p.Clashes), p.Adoptions())
				}
				w.apply(t, p)
			})
		}
	}
	t.Run("recovery", func(t *testing.T) {
		// After a crash and some console edits: an owned user and an owned group deleted by hand
		// (forgotten, created again), a user and a group whose creates were sent but never
		// recorded (claimed), and a stale pending create (cleared).
		desired := quickstart(t)
		w := synced(t, desired)
		for id, ext := range w.owned.Users {
			if ext == "u-1005" {
				delete(w.users, id)
				for _, g := range w.groups { // the target drops a deleted user's memberships
					g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == id })
				}
			}
		}
		for id, g := range w.groups {
			if g.ExternalID == "g-finance" {
				delete(w.groups, id)
			}
		}
		lost := user("u-2004", "grace.murray")
		desired.Users = append(desired.Users, lost)
		w.addUser(lost, false)
		desired.Groups = append(desired.Groups, scim.Group{ExternalID: "g-lost", DisplayName: "Lost", Members: []string{"u-2004"}})
		w.addGroup("g-lost", "Lost", false)
		w.owned.PendingUsers["u-2004"] = true
		w.owned.PendingUsers["u-9999"] = true
		w.owned.PendingGroups["g-lost"] = true
		p := compute(w, desired, Options{})
		checkPlan(t, "recovery", p)
		if len(p.Forget) != 2 || len(p.Claims) != 2 || len(p.ClearPending) != 1 {
			t.Errorf("got %d forgotten, %d claimed, %d pending cleared; want 2, 2 and 1", len(p.Forget), len(p.Claims), len(p.ClearPending))
		}
		w.apply(t, p)
	})
	t.Run("churn-adopt-unmatched", func(t *testing.T) {
		w, desired := churn(t)
		w.addUser(user("u-0042", "left.before.the.switch"), false)
		p := compute(w, desired, Options{Adopt: AdoptName, AdoptUnmatched: true, Deprovision: DeprovisionDisable})
		checkPlan(t, "churn-adopt-unmatched", p)
		w.apply(t, p)
	})
}
