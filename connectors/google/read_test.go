package google

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/google/googletest"
)

func byID(es []connectors.Entry) map[string]connectors.Entry {
	m := map[string]connectors.Entry{}
	for _, e := range es {
		m[e.ID] = e
	}
	return m
}

func TestReadUserAttributes(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	s := e.open(t, func(c *Config) { c.CustomSchemas = []string{"Employment"} })
	d, err := s.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	users := byID(d.Users)
	if got, want := len(users), 4; got != want {
		t.Fatalf("users = %d, want %d", got, want)
	}
	alice := users["u1"]
	if diff := cmp.Diff([]string{"alice@example.com", "alice.a@example.com", "alice@example.test-google-a.com"}, alice.Keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	want := map[string][]string{
		"id":                                     {"u1"},
		"primaryEmail":                           {"alice@example.com"},
		"aliases":                                {"alice.a@example.com"},
		"nonEditableAliases":                     {"alice@example.test-google-a.com"},
		"name.givenName":                         {"Alice"},
		"name.familyName":                        {"Liddell"},
		"name.fullName":                          {"Alice Liddell"},
		"suspended":                              {"false"},
		"archived":                               {"false"},
		"isAdmin":                                {"false"},
		"orgUnitPath":                            {"/Eng"},
		"customerId":                             {googletest.CustomerID},
		"organizations.name":                     {"Example", "Old Co"},
		"organizations.title":                    {"Engineer", "Intern"},
		"organizations.department":               {"Eng"},
		"organizations.costCenter":               {"CC1"},
		"externalIds.type":                       {"organization", "custom"},
		"externalIds.value":                      {"E001", "B7"},
		"externalIds.customType":                 {"badge"},
		"externalIds.organization":               {"E001"},
		"externalIds.badge":                      {"B7"},
		"relations.type":                         {"manager"},
		"relations.value":                        {"bob@example.com"},
		"relations.manager":                      {"bob@example.com"},
		"phones.type":                            {"work", "mobile"},
		"phones.value":                           {"+1 555 0101", "+1 555 0102"},
		"phones.work":                            {"+1 555 0101"},
		"phones.mobile":                          {"+1 555 0102"},
		"addresses.type":                         {"work"},
		"addresses.streetAddress":                {"1 Main St"},
		"addresses.locality":                     {"Springfield"},
		"addresses.countryCode":                  {"US"},
		"customSchemas.Employment.level":         {"L5"},
		"customSchemas.Employment.projects":      {"p1", "p2"},
		"customSchemas.Employment.projects.work": {"p2"},
	}
	if diff := cmp.Diff(want, alice.Attributes); diff != "" {
		t.Errorf("alice attributes (-want +got):\n%s", diff)
	}
	// The mask asked for Employment only: the other schema never left Google.
	for _, r := range e.fake.Requests() {
		if strings.HasSuffix(r.Path, "/users") {
			if got := r.Query.Get("projection") + " " + r.Query.Get("customFieldMask"); got != "custom Employment" {
				t.Errorf("users list projection and mask = %q, want %q", got, "custom Employment")
			}
		}
	}
}

func TestReadWithoutCustomSchemasAsksBasic(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	s := e.open(t, nil)
	d, err := s.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	for _, r := range e.fake.Requests() {
		if strings.HasSuffix(r.Path, "/users") && (r.Query.Has("projection") || r.Query.Has("customFieldMask")) {
			t.Errorf("users list asked projection %q mask %q without custom schemas", r.Query.Get("projection"), r.Query.Get("customFieldMask"))
		}
	}
	for k := range byID(d.Users)["u1"].Attributes {
		if strings.HasPrefix(k, "customSchemas.") {
			t.Errorf("attribute %s read without custom_schemas", k)
		}
	}
}

func TestReadMembership(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*Config)
		wantUsers []string
		want      map[string][]string
	}{
		{
			name:      "expand, disable",
			wantUsers: []string{"u1", "u2", "u3", "u4"},
			want: map[string][]string{
				// g2 is selected: referenced; g9 and g10 are not: inlined, cycle and all;
				// g404 is not in this customer: named by email, like the external user.
				"g1": {"customer:" + googletest.CustomerID, "g2", "guest@gmail.com", "partners@other.example", "u1", "u2", "u3", "u4"},
				"g2": {"g1", "u2"},
			},
		},
		{
			name:      "expand, omit suspended and archived",
			edit:      func(c *Config) { c.Suspended, c.Archived = Omit, Omit },
			wantUsers: []string{"u1", "u2"},
			want: map[string][]string{
				"g1": {"customer:" + googletest.CustomerID, "g2", "guest@gmail.com", "partners@other.example", "u1", "u2"},
				"g2": {"g1", "u2"},
			},
		},
		{
			name:      "derived",
			edit:      func(c *Config) { c.NestedGroups = Derived },
			wantUsers: []string{"u1", "u2", "u3", "u4"},
			want: map[string][]string{
				"g1": {"customer:" + googletest.CustomerID, "guest@gmail.com", "u1", "u2", "u3", "u4"},
				// g2 holds g1, so Google derives all of g1's members for it too.
				"g2": {"customer:" + googletest.CustomerID, "guest@gmail.com", "u1", "u2", "u3", "u4"},
			},
		},
		{
			name:      "user query leaves members outside it unresolved",
			edit:      func(c *Config) { c.UserQuery = "orgUnitPath='/Eng'"; c.Archived = Omit },
			wantUsers: []string{"u1", "u2"},
			want: map[string][]string{
				"g1": {"carol@example.com", "customer:" + googletest.CustomerID, "dave@example.com", "g2", "guest@gmail.com", "partners@other.example", "u1", "u2"},
				"g2": {"g1", "u2"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			seedSmall(e.fake)
			s := e.open(t, tc.edit)
			d, err := s.Read(context.Background())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			var ids []string
			for _, u := range d.Users {
				ids = append(ids, u.ID)
			}
			if diff := cmp.Diff(tc.wantUsers, ids); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
			got := map[string][]string{}
			for _, g := range d.Groups {
				got[g.ID] = g.Members
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			g1 := byID(d.Groups)["g1"]
			if diff := cmp.Diff([]string{"eng@example.com", "engineering@example.com"}, g1.Keys); diff != "" {
				t.Errorf("group keys (-want +got):\n%s", diff)
			}
			if got := g1.Get("name"); got != "Engineering" {
				t.Errorf("group name = %q, want Engineering", got)
			}
		})
	}
}

// TestFlavourMapsRead runs the shipped default mapping over a read: the connector's attribute
// names and the flavour's expressions agree, aliases resolve, external members are reported.
func TestFlavourMapsRead(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	s := e.open(t, func(c *Config) { c.Archived = Omit })
	d, err := s.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	m, err := connectors.Compile(s.cfg.Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	snap := m.Apply(d)
	users := map[string]int{}
	for i, u := range snap.Users {
		users[u.ExternalID] = i
	}
	a := snap.Users[users["u1"]]
	if a.UserName != "alice@example.com" || a.DisplayName != "Alice Liddell" || a.GivenName != "Alice" || !a.Active ||
		a.Title != "Engineer" || a.PhoneNumber != "+1 555 0101" || a.Enterprise.EmployeeNumber != "E001" ||
		a.Enterprise.Department != "Eng" || a.Enterprise.CostCenter != "CC1" || a.Enterprise.Manager != "u2" {
		t.Errorf("alice mapped to %+v", a)
	}
	if a.Address == nil || a.Address.Country != "US" || a.Address.Locality != "Springfield" {
		t.Errorf("alice address = %+v", a.Address)
	}
	if c := snap.Users[users["u3"]]; c.Active {
		t.Errorf("suspended carol mapped active")
	}
	var g1 []string
	for _, g := range snap.Groups {
		if g.ExternalID == "g1" {
			g1 = g.Members
			if g.DisplayName != "Engineering" {
				t.Errorf("g1 displayName = %q", g.DisplayName)
			}
		}
	}
	if diff := cmp.Diff([]string{"u1", "u2", "u3"}, g1); diff != "" {
		t.Errorf("g1 flattened members (-want +got):\n%s", diff)
	}
	// The external user, the CUSTOMER member and the other customer's group are reported.
	reported := false
	for _, p := range snap.Skipped {
		if p.ID == "g1" && p.Field == "members" && strings.Contains(p.Reason, "3 member") {
			reported = true
		}
	}
	if !reported {
		t.Errorf("left-out members of g1 not reported; skipped: %+v", snap.Skipped)
	}
}

func TestReadPagingIsMinimal(t *testing.T) {
	e := newEnv(t)
	seedLarge(e.fake, 1203, 450, 3, 450)
	s := e.open(t, func(c *Config) { c.Concurrency = 8 })
	d, err := s.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(d.Users) != 1203 || len(d.Groups) != 450 {
		t.Fatalf("read %d users, %d groups; want 1203, 450", len(d.Users), len(d.Groups))
	}
	if got := len(byID(d.Groups)["g0000"].Members); got != 450 {
		t.Errorf("big group has %d members, want 450", got)
	}
	want := minRequests(1203, 450, func(g int) int {
		if g == 0 {
			return 450
		}
		return 3
	})
	if got := len(e.fake.Requests()); got != want {
		t.Errorf("requests = %d, want the minimum %d", got, want)
	}
}

func TestReadRetries(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		status      int
		reason      string
		times       int
		wantErr     bool
		wantCode    int
	}{
		{name: "503 four times within the default budget of 5", status: 503, reason: "backendError", times: 4},
		{name: "503 four times with 4 attempts", maxAttempts: 4, status: 503, reason: "backendError", times: 4, wantErr: true, wantCode: 503},
		{name: "403 userRateLimitExceeded", status: 403, reason: "userRateLimitExceeded", times: 2},
		{name: "403 quotaExceeded", status: 403, reason: "quotaExceeded", times: 1},
		{name: "429 rateLimitExceeded", status: 429, reason: "rateLimitExceeded", times: 3},
		{name: "403 forbidden is not retried", status: 403, reason: "forbidden", times: 1, wantErr: true, wantCode: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			seedLarge(e.fake, 1600, 5, 2, 2)
			e.fake.FailPage("/admin/directory/v1/users", 3, tc.times, tc.status, tc.reason)
			s := e.open(t, func(c *Config) { c.MaxAttempts = tc.maxAttempts })
			d, err := s.Read(context.Background())
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if len(d.Users) != 1600 {
					t.Fatalf("read %d users, want 1600", len(d.Users))
				}
				if got := s.tr.retries.Load(); got != int64(tc.times) {
					t.Errorf("retries = %d, want %d", got, tc.times)
				}
				return
			}
			if d != nil {
				t.Fatalf("Read returned a directory with the error %v", err)
			}
			var ge *googleapi.Error
			if !errors.As(err, &ge) || ge.Code != tc.wantCode {
				t.Fatalf("Read error = %v, want a googleapi.Error %d", err, tc.wantCode)
			}
			if !strings.Contains(err.Error(), "list users (page 3)") {
				t.Errorf("error %q does not name the page", err)
			}
		})
	}
}

func TestReadFailsOnAnyMemberPage(t *testing.T) {
	e := newEnv(t)
	seedLarge(e.fake, 10, 30, 2, 420)
	e.fake.FailPage("/admin/directory/v1/groups/g0000/members", 2, 99, http.StatusInternalServerError, "backendError")
	s := e.open(t, func(c *Config) { c.MaxAttempts = 2 })
	d, err := s.Read(context.Background())
	if err == nil || d != nil {
		t.Fatalf("Read = %v, %v; want no directory and an error", d, err)
	}
	if !strings.Contains(err.Error(), "list members of group g0000 (page 2)") {
		t.Errorf("error %q does not name the group and page", err)
	}
}

func TestReadDomainAndQueries(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	s := e.open(t, func(c *Config) {
		c.Domain = "example.com"
		c.GroupQuery = "email:eng*"
		c.UserQuery = "isSuspended=false"
	})
	d, err := s.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(d.Groups) != 1 || d.Groups[0].ID != "g1" {
		t.Fatalf("groups = %+v, want g1 only", d.Groups)
	}
	// g2 is no longer selected: it is expanded (its cycle back to g1 ends there).
	if diff := cmp.Diff([]string{"carol@example.com", "customer:" + googletest.CustomerID, "guest@gmail.com", "partners@other.example", "u1", "u2", "u4"}, d.Groups[0].Members); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	for _, r := range e.fake.Requests() {
		if r.Query.Has("customer") {
			t.Errorf("%s sent customer with a domain configured", r.Path)
		}
	}
}
