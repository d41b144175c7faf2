package google

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admin "google.golang.org/api/admin/directory/v1"

	"github.com/scimbridge/scimbridge/connectors"
)

// TestMemberCountSignalMissesSwaps weighs the cheaper group signal the issue asks about: a
// fields-limited groups.list of directMembersCount per poll (one request per 200 groups, no
// reporting lag). A member swap within one poll interval leaves every count as it was (as a
// change inside a nested group leaves its parents' counts), while the admin audit log reports
// it: the count is no reliable signal of membership changes. (Google documents no rule for when a group's etag
// changes, and the fake cannot stand in for one, so etags are not relied on either.)
func TestMemberCountSignalMissesSwaps(t *testing.T) {
	e, s, clk := feedEnv(t, nil)
	r := watch(t, s, clk, "")
	counts := func() map[string]int64 {
		t.Helper()
		out := map[string]int64{}
		err := s.svc.Groups.List().Customer("my_customer").MaxResults(groupsPageSize).
			Fields("nextPageToken,groups(id,directMembersCount)").
			Pages(context.Background(), func(p *admin.Groups) error {
				for _, g := range p.Groups {
					out[g.Id] = g.DirectMembersCount
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := counts()
	e.fake.RemoveMember("g2", "u2")                                                           // a swap in g2
	e.fake.AddMember("g2", &admin.Member{Id: "u1", Email: "alice@example.com", Type: "USER"}) //
	if after := counts(); !cmp.Equal(after, before) {
		t.Fatalf("counts changed on a swap: %v -> %v", before, after)
	}
	if got := r.poll(testLag + time.Second); !cmp.Equal(got, []connectors.Change{group("g2")}, changeOpts...) {
		t.Errorf("the admin audit log reported %v, want g2", got)
	}
}
