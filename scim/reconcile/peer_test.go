package reconcile_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// A peer is another sync tool that filled the target before scimbridge's first run.
type peer struct {
	name string
	// ext is the externalId the peer gives a record with source (Google) id id.
	ext func(id string) string
	// adopt is the adopt mode the clash hint should name.
	adopt plan.Adopt
}

var peers = []peer{
	// awslabs/ssosync and slashdevops/idp-scim-sync: externalId = the Google user or group id,
	// the id scimbridge's Google connector uses.
	{"google id", func(id string) string { return id }, plan.AdoptExternalID},
	// Older ssosync: no externalId at all.
	{"no externalId", func(string) string { return "" }, plan.AdoptName},
	// Some other scheme.
	{"other scheme", func(id string) string { return "peer-" + id }, plan.AdoptName},
}

// directory makes n users and g groups with Google-style ids; user i is in group i%g and, for
// even i, in group 0 too.
func directory(n, g int) scim.Snapshot {
	var s scim.Snapshot
	for i := range n {
		s.Users = append(s.Users, person(fmt.Sprintf("1%08d", i), fmt.Sprintf("user%05d", i)))
	}
	for j := range g {
		grp := scim.Group{ExternalID: fmt.Sprintf("0g%07d", j), DisplayName: fmt.Sprintf("Team %03d", j)}
		for i := range n {
			if i%g == j || (j == 0 && i%2 == 0) {
				grp.Members = append(grp.Members, s.Users[i].ExternalID)
			}
		}
		s.Groups = append(s.Groups, grp)
	}
	return s
}

// fillAsPeer writes the directory to the target the way the peer does. With phone, the peer also
// set a phone number on the first user, which scimbridge's mapping leaves empty.
func fillAsPeer(t testing.TB, e *env, p peer, d scim.Snapshot, phone bool) {
	t.Helper()
	ctx := context.Background()
	ids := map[string]string{}
	for i, u := range d.Users {
		u.ExternalID = p.ext(u.ExternalID)
		if i == 0 && phone {
			u.PhoneNumber, u.PhoneType = "+1 555 0100", "work"
		}
		id, err := e.client.CreateUser(ctx, u, "")
		if err != nil {
			t.Fatal(err)
		}
		ids[d.Users[i].ExternalID] = id
	}
	for _, g := range d.Groups {
		var members []string
		for _, m := range g.Members {
			members = append(members, ids[m])
		}
		id, err := e.client.CreateGroup(ctx, scim.Group{ExternalID: p.ext(g.ExternalID), DisplayName: g.DisplayName}, members[:min(100, len(members))])
		if err != nil {
			t.Fatal(err)
		}
		for from := 100; from < len(members); from += 100 {
			if err := e.client.PatchGroup(ctx, id, client.GroupPatch{Add: members[from:min(from+100, len(members))]}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// leave removes users from the directory and from its groups.
func leave(d scim.Snapshot, exts ...string) scim.Snapshot {
	gone := map[string]bool{}
	for _, x := range exts {
		gone[x] = true
	}
	d.Users = slices.DeleteFunc(slices.Clone(d.Users), func(u scim.User) bool { return gone[u.ExternalID] })
	groups := slices.Clone(d.Groups)
	for i := range groups {
		groups[i].Members = slices.DeleteFunc(slices.Clone(groups[i].Members), func(m string) bool { return gone[m] })
	}
	d.Groups = groups
	return d
}

// TestPeerShapes: a target filled by another tool, then a directory change (two leavers, one
// title change), then scimbridge. Without adopt nothing is created or claimed and both the full
// and the trusted run leave every record out with the hint that matches; with that adopt mode,
// adoption writes exactly the objects that differ, and a leaver after adoption is deprovisioned.
func TestPeerShapes(t *testing.T) {
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			v0 := directory(20, 3)
			fillAsPeer(t, e, p, v0, true)
			v1 := leave(v0, v0.Users[18].ExternalID, v0.Users[19].ExternalID)
			v1.Users[5].Title = "Staff Engineer"
			e.set(v1)
			now := time.Now()
			opts := func(adopt plan.Adopt) func(*reconcile.Config) {
				return func(c *reconcile.Config) {
					c.FullReconcileEvery = time.Hour
					c.Now = func() time.Time { return now }
					c.Plan.Adopt = adopt
				}
			}
			r := e.reconciler(opts(plan.AdoptNone))
			// Runs 1 (full read) and 2 (trusted): nothing written, every record left out, the hint.
			for run := 1; run <= 2; run++ {
				e.srv.Emu.ResetStats()
				res := e.run(r, reconcile.RunOptions{})
				if run == 1 != res.FullRead {
					t.Fatalf("run %d: full read %v", run, res.FullRead)
				}
				if w := writes(e.srv.Emu.Stats()); w != 0 || res.Counts.Created != 0 || len(res.Plan.Claims) != 0 {
					t.Fatalf("run %d without adopt: %d writes, counts %+v claims %v", run, w, res.Counts, res.Plan.Claims)
				}
				if len(res.Plan.Clashes) != 18+3 {
					t.Fatalf("run %d: %d clashes, want 21\n%s", run, len(res.Plan.Clashes), planText(res.Plan))
				}
				for _, c := range res.Plan.Clashes {
					if c.Adopt != p.adopt {
						t.Fatalf("run %d: clash %+v names adopt %q, want %q", run, c, c.Adopt, p.adopt)
					}
				}
				if run == 2 && total(e.srv.Emu.Stats()) != 0 {
					t.Errorf("trusted run made %d requests", total(e.srv.Emu.Stats()))
				}
			}
			// A dry run with the hinted mode shows the adopt lines.
			ra := e.reconciler(opts(p.adopt))
			dry := e.run(ra, reconcile.RunOptions{DryRun: true})
			if dry.Plan.Adoptions() != 21 || len(dry.Plan.CreateUsers) != 0 {
				t.Fatalf("dry run with adopt %s: %d adoptions\n%s", p.adopt, dry.Plan.Adoptions(), planText(dry.Plan))
			}
			// Adoption: writes = objects that differ. With the Google id, user 0 (the peer's phone
			// number, cleared), user 5 (title) and the groups the leavers were in; otherwise every
			// object, since each must get its externalId.
			e.srv.Emu.ResetStats()
			now = now.Add(time.Minute)
			res := e.run(ra, reconcile.RunOptions{})
			wantWrites := int64(2 + 2)
			if p.adopt == plan.AdoptName {
				wantWrites = 18 + 3
			}
			if got := writes(e.srv.Emu.Stats()); got != wantWrites || res.Counts.Created != 0 || res.Counts.Adopted != 21 {
				t.Errorf("adoption: %d writes (want %d), counts %+v\n%s", got, wantWrites, res.Counts, planText(res.Plan))
			}
			if len(res.Plan.Clashes) != 0 || int64(res.Plan.LowerBound(100)) < writes(e.srv.Emu.Stats()) {
				t.Errorf("adoption plan: clashes %v, lower bound %d", res.Plan.Clashes, res.Plan.LowerBound(100))
			}
			// The leavers before adoption were never the peer's to hand over: left alone.
			v := e.view()
			if _, ok := v.Users["user00018@example.com"]; !ok {
				t.Errorf("a leaver from before the adoption was touched")
			}
			// A leaver after adoption is deprovisioned.
			e.set(leave(v1, v1.Users[3].ExternalID))
			now = now.Add(time.Minute)
			res = e.run(ra, reconcile.RunOptions{})
			if res.Counts.Deleted != 1 {
				t.Errorf("leaver after adoption: counts %+v", res.Counts)
			}
			if p := e.run(ra, reconcile.RunOptions{FullRead: true}).Plan; !p.Empty() || len(p.Problems) != 0 {
				t.Errorf("not converged:\n%s", planText(p))
			}
		})
	}
}

// TestPeerAdoptionFigures measures the figures of issue 20 on 1,000 users and 100 groups filled
// by a peer: run with -v to see them.
func TestPeerAdoptionFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 users; skipped with -short")
	}
	for _, p := range peers[:2] {
		t.Run(p.name, func(t *testing.T) {
			measure := func(t *testing.T, change bool) {
				e := newEnv(t)
				d := directory(1000, 100)
				fillAsPeer(t, e, p, d, false)
				want := d
				if change { // 1%: ten users get a new title
					want.Users = slices.Clone(d.Users)
					for i := 100; i < 110; i++ {
						want.Users[i].Title = "Changed"
					}
				}
				e.set(want)
				now := time.Now()
				r := e.reconciler(func(c *reconcile.Config) {
					c.FullReconcileEvery = time.Hour
					c.Now = func() time.Time { return now }
				})
				if !change {
					for run := 1; run <= 2; run++ {
						e.srv.Emu.ResetStats()
						res := e.run(r, reconcile.RunOptions{})
						st := e.srv.Emu.Stats()
						t.Logf("FIGURE %s: run %d without adopt: %d requests, %d writes, %d records left out (clashes), full read %v",
							p.name, run, total(st), writes(st), len(res.Plan.Clashes), res.FullRead)
						if writes(st) != 0 || len(res.Plan.Clashes) != 1100 {
							t.Errorf("run %d: %d writes, %d clashes", run, writes(st), len(res.Plan.Clashes))
						}
					}
				}
				ra := e.reconciler(func(c *reconcile.Config) {
					c.FullReconcileEvery = time.Hour
					c.Now = func() time.Time { return now }
					c.Plan.Adopt = p.adopt
				})
				e.srv.Emu.ResetStats()
				res := e.run(ra, reconcile.RunOptions{})
				st := e.srv.Emu.Stats()
				t.Logf("FIGURE %s: adoption (change %v): %d writes, lower bound %d, %d reads, %d adopted",
					p.name, change, writes(st), res.Plan.LowerBound(100), total(st)-writes(st), res.Counts.Adopted)
				if p.adopt == plan.AdoptExternalID {
					want := int64(0)
					if change {
						want = 10
					}
					if writes(st) != want {
						t.Errorf("adoption made %d writes, want %d", writes(st), want)
					}
				}
			}
			t.Run("no change", func(t *testing.T) { measure(t, false) })
			t.Run("1% change", func(t *testing.T) { measure(t, true) })
		})
	}
}
