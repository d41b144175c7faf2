package emulator_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// membersOf returns the ids of gid's members, read per member as Identity Center allows.
func (c *client) membersOf(gid string) []string {
	c.t.Helper()
	var ids []string
	for _, u := range c.must(200, "GET", "/Users"+q(`groups.value eq "`+gid+`"`), nil).resources() {
		ids = append(ids, u["id"].(string))
	}
	slices.Sort(ids)
	return ids
}

// TestStrictRFC: with StrictRFC, a remove of "members" carrying a value list and no filter
// removes every member (RFC 7644 3.5.2.2 read literally), a remove with a value filter removes
// that member only, replace replaces all, listings page with startIndex and totalResults, and
// /ServiceProviderConfig says how many results a page holds. Identity Center's mode removes
// only the listed values and refuses the rest, as before.
func TestStrictRFC(t *testing.T) {
	for _, rfc := range []bool{false, true} {
		t.Run(fmt.Sprintf("StrictRFC=%v", rfc), func(t *testing.T) {
			_, c := start(t, emulator.Options{StrictRFC: rfc, MaxResults: 7})
			var users []string
			for i := range 4 {
				users = append(users, c.createUser(fmt.Sprintf("r%d", i)))
			}
			slices.Sort(users)
			gid := c.createGroup("team", users...)
			one := []any{map[string]any{"value": users[0]}}
			c.must(204, "PATCH", "/Groups/"+gid, patch(op("remove", "members", one)))
			got := c.membersOf(gid)
			want := users[1:]
			if rfc {
				want = nil // every member gone
			}
			if !slices.Equal(got, want) {
				t.Errorf("after remove path members with one value: got %v, want %v", got, want)
			}
			if rfc {
				c.must(204, "PATCH", "/Groups/"+gid, patch(op("add", "members", []any{
					map[string]any{"value": users[1]}, map[string]any{"value": users[2]}, map[string]any{"value": users[3]}})))
			}
			c.must(204, "PATCH", "/Groups/"+gid, patch(
				op("remove", fmt.Sprintf(`members[value eq %q]`, users[1]), nil),
				op("remove", fmt.Sprintf(`members[value eq %q]`, users[2]), nil)))
			if got := c.membersOf(gid); !slices.Equal(got, users[3:]) {
				t.Errorf("after two filtered removes: got %v, want %v", got, users[3:])
			}
			replace := c.do("PATCH", "/Groups/"+gid, patch(op("replace", "members", one)))
			switch {
			case rfc && replace.status != 204:
				t.Errorf("replace members: got status %d, want 204; %s", replace.status, replace.raw)
			case rfc:
				if got := c.membersOf(gid); !slices.Equal(got, users[:1]) {
					t.Errorf("after replace: got %v, want %v", got, users[:1])
				}
			case replace.status != 400:
				t.Errorf("replace members in Identity Center's mode: got status %d, want 400", replace.status)
			}

			spc := c.must(200, "GET", "/ServiceProviderConfig", nil)
			filter, _ := spc.body["filter"].(map[string]any)
			wantMax := 100.0
			if rfc {
				wantMax = 7
			}
			if filter["maxResults"] != wantMax || filter["supported"] != true {
				t.Errorf("ServiceProviderConfig filter: got %v, want supported with maxResults %v", filter, wantMax)
			}
			if rfc {
				for i := range 10 {
					c.createUser(fmt.Sprintf("p%d", i))
				}
				var seen []string
				for start := 1; ; {
					r := c.must(200, "GET", fmt.Sprintf("/Users?startIndex=%d&count=100", start), nil)
					if r.body["totalResults"] != 14.0 || r.body["nextCursor"] != nil {
						t.Fatalf("page at %d: totalResults %v nextCursor %v, want 14 and none", start, r.body["totalResults"], r.body["nextCursor"])
					}
					res := r.resources()
					if len(res) > 7 {
						t.Fatalf("page at %d holds %d, want at most 7", start, len(res))
					}
					for _, u := range res {
						seen = append(seen, u["id"].(string))
					}
					if len(res) == 0 || len(seen) >= 14 {
						break
					}
					start += len(res)
				}
				slices.Sort(seen)
				if len(slices.Compact(seen)) != 14 {
					t.Errorf("paged through %d distinct users, want 14", len(seen))
				}
			}
		})
	}
}

// TestMembersInListings: Identity Center returns groups without members; with MembersInListings
// listings and GET carry them.
func TestMembersInListings(t *testing.T) {
	for _, in := range []bool{false, true} {
		_, c := start(t, emulator.Options{MembersInListings: in})
		u := c.createUser("m")
		gid := c.createGroup("g", u)
		want := 0
		if in {
			want = 1
		}
		for _, g := range []map[string]any{c.must(http.StatusOK, "GET", "/Groups/"+gid, nil).body,
			c.must(http.StatusOK, "GET", "/Groups", nil).resources()[0]} {
			if ms, _ := g["members"].([]any); len(ms) != want {
				t.Errorf("MembersInListings=%v: got members %v, want %d", in, g["members"], want)
			}
		}
	}
}
