package reconcile_test

import (
	"testing"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// TestDesiredNormalized: the reconciler normalises what Desired returns unless the config says
// the source already did (connectors.Mapping.Apply does), so a sync normalises once. The title
// with spaces around it shows which: Normalize trims it.
func TestDesiredNormalized(t *testing.T) {
	for _, c := range []struct {
		normalized bool
		want       string
	}{{false, "eng"}, {true, " eng "}} {
		e := newEnv(t)
		e.set(scim.Snapshot{Users: []scim.User{{ExternalID: "u1", UserName: "a@x.com", DisplayName: "A B",
			GivenName: "A", FamilyName: "B", Title: " eng ", Active: true}}})
		var got []scim.User
		r := e.reconciler(func(cfg *reconcile.Config) {
			cfg.DesiredNormalized = c.normalized
			cfg.OnPlan = func(p *plan.Plan) { got = p.CreateUsers }
		})
		e.run(r, reconcile.RunOptions{DryRun: true})
		if len(got) != 1 || got[0].Title != c.want {
			t.Errorf("DesiredNormalized %t: planned creates %+v; want one user with title %q", c.normalized, got, c.want)
		}
	}
}
