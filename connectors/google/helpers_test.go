package google

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/googleapi"

	"github.com/scimbridge/scimbridge/connectors/google/googletest"
	"github.com/scimbridge/scimbridge/connectors/secret"
)

const (
	testSA      = "scimbridge@fake-project.iam.gserviceaccount.com"
	testSubject = "admin@example.com"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func key(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatalf("generate key: %v", err)
		}
	})
	return testKey
}

// env is a fake Directory API and token endpoint with a config pointing at them.
type env struct {
	fake   *googletest.Server
	tokens *googletest.TokenServer
	cfg    Config
}

func newEnv(t testing.TB) *env {
	t.Helper()
	fake := googletest.New()
	t.Cleanup(fake.Close)
	tokens, err := googletest.NewTokenServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tokens.Close)
	tokens.Trust(testSA, &key(t).PublicKey)
	keyJSON, err := googletest.ServiceAccountKey(key(t), testSA, tokens.URL+"/token")
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, tokens: tokens, cfg: Config{
		Subject:           testSubject,
		ServiceAccountKey: secret.Secret(keyJSON),
		Endpoint:          fake.URL + "/",
		RetryBackoff:      time.Millisecond,
		MaxRetryBackoff:   2 * time.Millisecond,
	}}
}

// open opens a source on the env's config, changed by edit.
func (e *env) open(t testing.TB, edit func(*Config)) *source {
	t.Helper()
	c := e.cfg
	if edit != nil {
		edit(&c)
	}
	s, err := c.open(slog.New(slog.DiscardHandler), &http.Client{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func raw(s string) googleapi.RawMessage { return googleapi.RawMessage(s) }

// seedSmall loads a directory with every shape the connector handles:
// aliases, custom schemas, suspended/archived users, selected and unselected nested groups
// with cycles, an external user, a CUSTOMER member and a nested group of another customer.
func seedSmall(f *googletest.Server) {
	f.AddUser(
		&admin.User{
			Id: "u1", PrimaryEmail: "alice@example.com", Aliases: []string{"alice.a@example.com"},
			NonEditableAliases: []string{"alice@example.test-google-a.com"},
			Name:               &admin.UserName{GivenName: "Alice", FamilyName: "Liddell", FullName: "Alice Liddell"},
			OrgUnitPath:        "/Eng",
			Organizations: []any{
				map[string]any{"name": "Old Co", "title": "Intern"},
				map[string]any{"name": "Example", "title": "Engineer", "department": "Eng", "costCenter": "CC1", "primary": true},
			},
			ExternalIds: []any{map[string]any{"type": "organization", "value": "E001"}, map[string]any{"type": "custom", "customType": "badge", "value": "B7"}},
			Relations:   []any{map[string]any{"type": "manager", "value": "bob@example.com"}},
			Phones:      []any{map[string]any{"type": "mobile", "value": "+1 555 0102"}, map[string]any{"type": "work", "value": "+1 555 0101", "primary": true}},
			Addresses:   []any{map[string]any{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield", "countryCode": "US", "primary": true}},
			CustomSchemas: map[string]googleapi.RawMessage{
				"Employment": raw(`{"level":"L5","projects":[{"value":"p1"},{"type":"work","value":"p2"}]}`),
				"Secret":     raw(`{"ssn":"000"}`),
			},
		},
		&admin.User{Id: "u2", PrimaryEmail: "bob@example.com", Name: &admin.UserName{GivenName: "Bob", FamilyName: "Builder", FullName: "Bob Builder"}, OrgUnitPath: "/Eng"},
		&admin.User{Id: "u3", PrimaryEmail: "carol@example.com", Name: &admin.UserName{GivenName: "Carol", FamilyName: "C", FullName: "Carol C"}, Suspended: true, OrgUnitPath: "/Sales"},
		&admin.User{Id: "u4", PrimaryEmail: "dave@example.com", Name: &admin.UserName{GivenName: "Dave", FamilyName: "D", FullName: "Dave D"}, Archived: true, OrgUnitPath: "/Sales"},
	)
	f.AddGroup(&admin.Group{Id: "g1", Email: "eng@example.com", Name: "Engineering", Aliases: []string{"engineering@example.com"}},
		&admin.Member{Id: "u1", Email: "alice@example.com", Type: "USER"},
		&admin.Member{Id: "g2", Email: "platform@example.com", Type: "GROUP"},
		&admin.Member{Id: "g9", Email: "hidden@example.com", Type: "GROUP"},
		&admin.Member{Id: "x1", Email: "guest@gmail.com", Type: "USER"},
		&admin.Member{Id: googletest.CustomerID, Type: "CUSTOMER"},
		&admin.Member{Id: "u3", Email: "carol@example.com", Type: "USER", Status: "SUSPENDED"},
		&admin.Member{Id: "g404", Email: "partners@other.example", Type: "GROUP"},
	)
	f.AddGroup(&admin.Group{Id: "g2", Email: "platform@example.com", Name: "Platform"},
		&admin.Member{Id: "u2", Email: "bob@example.com", Type: "USER"},
		&admin.Member{Id: "g1", Email: "eng@example.com", Type: "GROUP"}, // a cycle
	)
	// Not selected by a listing of "eng*"/"platform*"... but listed by an unfiltered one.
	f.SetMembers("g9",
		&admin.Member{Id: "u4", Email: "dave@example.com", Type: "USER"},
		&admin.Member{Id: "g10", Email: "deeper@example.com", Type: "GROUP"},
	)
	f.SetMembers("g10",
		&admin.Member{Id: "u2", Email: "bob@example.com", Type: "USER"},
		&admin.Member{Id: "g9", Email: "hidden@example.com", Type: "GROUP"}, // a cycle
	)
}

// seedLarge loads users users u00000.., groups groups g0000.., each group holding the next
// perGroup users; group g0000 holds bigGroup members.
func seedLarge(f *googletest.Server, users, groups, perGroup, bigGroup int) {
	us := make([]*admin.User, users)
	for i := range us {
		us[i] = &admin.User{Id: fmt.Sprintf("u%05d", i), PrimaryEmail: fmt.Sprintf("user%05d@example.com", i),
			Name: &admin.UserName{GivenName: "User", FamilyName: fmt.Sprint(i), FullName: fmt.Sprintf("User %d", i)}}
	}
	f.AddUser(us...)
	for g := range groups {
		n := perGroup
		if g == 0 {
			n = bigGroup
		}
		ms := make([]*admin.Member, n)
		for j := range ms {
			u := us[(g*perGroup+j)%users]
			ms[j] = &admin.Member{Id: u.Id, Email: u.PrimaryEmail, Type: "USER"}
		}
		f.AddGroup(&admin.Group{Id: fmt.Sprintf("g%04d", g), Email: fmt.Sprintf("group%04d@example.com", g), Name: fmt.Sprintf("Group %d", g)}, ms...)
	}
}

// minRequests is the fewest list calls paging allows for a directory.
func minRequests(users, groups int, membersOf func(g int) int) int {
	pages := func(n, size int) int { return max(1, (n+size-1)/size) }
	total := pages(users, usersPageSize) + pages(groups, groupsPageSize)
	for g := range groups {
		total += pages(membersOf(g), membersPageSize)
	}
	return total
}
