package bench

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admin "google.golang.org/api/admin/directory/v1"

	"github.com/scimbridge/scimbridge/connectors/google/googletest"
)

// googleFresh drives the Google Workspace fake: users pushed through Users.Watch to serve's
// webhook, groups and memberships seen in the Reports API's admin audit log after the fake's
// reporting lag. The generated ids are the Google ids.
type googleFresh struct {
	fake   *googletest.Server
	tokens *googletest.TokenServer
	lag    time.Duration
}

const googleSA = "scimbridge-bench@fake-project.iam.gserviceaccount.com"

func newGoogleFresh(t *testing.T, lag time.Duration) *googleFresh {
	fake := googletest.New()
	t.Cleanup(fake.Close)
	tokens, err := googletest.NewTokenServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tokens.Close)
	fake.SetReportLag(lag)
	return &googleFresh{fake: fake, tokens: tokens, lag: lag}
}

func (g *googleFresh) user(d *Directory, i int) *admin.User {
	u := d.users[i]
	return &admin.User{Id: u.id, PrimaryEmail: u.email,
		Name:          &admin.UserName{GivenName: u.first, FamilyName: u.last, FullName: u.first + " " + u.last},
		Organizations: []any{map[string]any{"title": u.title, "department": u.dept, "primary": true}}}
}

func (g *googleFresh) userMember(d *Directory, i int) *admin.Member {
	return &admin.Member{Id: d.users[i].id, Email: d.users[i].email, Type: "USER"}
}

func (g *googleFresh) Setup(_ context.Context, d *Directory, dir, serveAddr string) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	g.tokens.Trust(googleSA, &key.PublicKey)
	keyJSON, err := googletest.ServiceAccountKey(key, googleSA, g.tokens.URL+"/token")
	if err != nil {
		return "", err
	}
	keyFile := filepath.Join(dir, "google-key.json")
	if err := os.WriteFile(keyFile, keyJSON, 0o600); err != nil {
		return "", err
	}
	for i := range d.users {
		if d.alive[i] {
			g.fake.AddUser(g.user(d, i))
		}
	}
	for gi := len(d.groups) - 1; gi >= 0; gi-- {
		gr := d.groups[gi]
		var members []*admin.Member
		for _, m := range gr.members {
			if d.alive[m] {
				members = append(members, g.userMember(d, m))
			}
		}
		for _, c := range gr.children {
			members = append(members, &admin.Member{Id: d.groups[c].id, Email: d.groups[c].name + "@example.com", Type: "GROUP"})
		}
		g.fake.AddGroup(&admin.Group{Id: gr.id, Email: gr.name + "@example.com", Name: gr.name}, members...)
	}
	// Google calls an https webhook; the fake delivers to serve's plain listener instead.
	const hook = "https://scimbridge.example/v1/webhooks/google"
	g.fake.DeliverPushes(&http.Client{Timeout: 10 * time.Second}, func(addr string) string {
		return strings.Replace(addr, "https://scimbridge.example", "http://"+serveAddr, 1)
	})
	return fmt.Sprintf(`  type: google
  google:
    subject: admin@example.com
    service_account_key_file: %s
    endpoint: %s/
    watch: {address: %s}
    feed: {poll_interval: 5s}
`, keyFile, g.fake.URL, hook), nil
}

func (g *googleFresh) Apply(_ context.Context, d *Directory, c *FreshChange) error {
	id := d.users[c.User].id
	ok := true
	switch c.Kind {
	case KindJoiner:
		g.fake.CreateUser(g.user(d, c.User))
		ok = g.fake.AddMember(d.groups[c.Group].id, g.userMember(d, c.User))
	case KindLeaver:
		ok = g.fake.DeleteUser(id)
	case KindRename:
		ok = g.fake.RenameUser(id, c.UserName)
	case KindMove:
		ok = g.fake.RemoveMember(d.groups[c.From].id, id) && g.fake.AddMember(d.groups[c.Group].id, g.userMember(d, c.User))
	case KindNested:
		ok = g.fake.AddMember(d.groups[c.Group].id, g.userMember(d, c.User))
	}
	if !ok {
		return fmt.Errorf("the fake refused %s", c.Desc)
	}
	return nil
}

func (g *googleFresh) ExternalID(id string) string { return id }

// SourceRequests counts the requests the fake answered (Directory and Reports API).
func (g *googleFresh) SourceRequests() int64 { return int64(len(g.fake.Requests())) }

func (g *googleFresh) Close() error { return nil }
