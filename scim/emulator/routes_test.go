package emulator_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scimbridge/scimbridge/scim/emulator"
)

// TestRoutes pins how requests are routed: which path and method reach which operation (as the
// Stats counters show), and the 401/404/405 answers around them, in Identity Center's shape.
func TestRoutes(t *testing.T) {
	srv, c := start(t, emulator.Options{Tenant: "tenant-r", Token: "tok-r"})
	uid := c.createUser("alice")
	gid := c.createGroup("team")
	srv.Emu.ResetStats()

	for _, tc := range []struct {
		method, path string
		status       int
		counted      string // the Stats key the request counts, "" for none
	}{
		// Leading and trailing slashes are dropped. (Before the ServeMux routes, a trailing
		// slash after an id or a discovery path was counted and then answered 404.)
		{"GET", "/Users/", 200, "scim.ListUsers"},
		{"GET", "/Users/" + uid + "/", 200, "scim.GetUser"},
		{"GET", "/ServiceProviderConfig/", 200, "scim.GetServiceProviderConfig"},
		{"GET", "/ResourceTypes/Group", 200, "scim.GetResourceType"},
		{"GET", "/Schemas/urn:nothing", 404, "scim.GetSchema"},
		{"GET", "/ResourceTypes/Nothing", 404, "scim.GetResourceType"},
		{"HEAD", "/Users", 405, ""},
		{"HEAD", "/Users/" + uid, 405, ""},
		{"PUT", "/Groups/" + gid, 405, ""},
		{"POST", "/Users/" + uid, 405, ""},
		{"DELETE", "/Schemas", 405, ""},
		{"GET", "/Users//x", 404, ""},
		{"GET", "/Users/" + uid + "/x", 404, ""},
		{"GET", "/Users/..", 404, ""},
		{"GET", "/Groups/.search", 404, ""},
		{"GET", "", 404, ""},
		{"GET", "/Me", 404, ""},
	} {
		r := c.do(tc.method, tc.path, nil)
		if r.status != tc.status {
			t.Errorf("%s %s: got status %d, want %d; body %s", tc.method, tc.path, r.status, tc.status, r.raw)
			continue
		}
		if tc.status >= 400 && tc.method != "HEAD" {
			checkAWSError(t, r, tc.status)
		}
		want := emulator.Stats{}
		if tc.counted != "" {
			want[tc.counted] = 1
		}
		if diff := cmp.Diff(want, srv.Emu.Stats()); diff != "" {
			t.Errorf("%s %s: stats (-want +got):\n%s", tc.method, tc.path, diff)
		}
		srv.Emu.ResetStats()
	}

	// The bearer token is checked before the path and the method are.
	anon := &client{t: t, base: srv.URL, token: ""}
	for _, p := range []string{"/Nothing", "/Users/a/b", ""} {
		checkAWSError(t, anon.do("GET", p, nil), 401)
	}
	if r := anon.do("HEAD", "/Users", nil); r.status != 401 {
		t.Errorf("HEAD /Users without a token: got status %d, want 401", r.status)
	}
	stats := &client{t: t, base: srv.HTTP.URL, token: "tok-r"}
	if r := stats.do("HEAD", emulator.StatsPath, nil); r.status != 405 {
		t.Errorf("HEAD stats: got status %d, want 405", r.status)
	}
	checkAWSError(t, (&client{t: t, base: srv.HTTP.URL}).do("PUT", emulator.StatsPath, nil), 401)
	checkAWSError(t, stats.do("GET", "/nowhere", nil), 404)
	checkAWSError(t, stats.do("GET", "/other-tenant/scim/v2/Users", nil), 401)
	if got := srv.Emu.Stats(); len(got) != 0 {
		t.Errorf("refused requests were counted: %v", got)
	}
}

// TestResourceHeaders pins the status, Etag, Location and Content-Type of single-resource
// answers.
func TestResourceHeaders(t *testing.T) {
	_, c := start(t, emulator.Options{})
	r := c.must(201, "POST", "/Users", user("bob"))
	id, _ := r.body["id"].(string)
	want := map[string]string{"Etag": `W/"1"`, "Location": "Users/" + id, "Content-Type": "application/scim+json"}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("POST /Users %s: got %q, want %q", k, got, v)
		}
	}
	meta, _ := r.body["meta"].(map[string]any)
	if got := meta["location"]; got != "Users/"+id {
		t.Errorf("meta.location: got %v, want Users/%s", got, id)
	}
	if got := c.must(200, "GET", "/Users/"+id, nil).header.Get("Etag"); got != `W/"1"` {
		t.Errorf("GET /Users Etag: got %q, want %q", got, `W/"1"`)
	}
	if got := c.must(200, "PUT", "/Users/"+id, user("bob")).header.Get("Etag"); got != `W/"2"` {
		t.Errorf("PUT /Users Etag: got %q, want %q", got, `W/"2"`)
	}
	g := c.must(201, "POST", "/Groups", group("g1", id))
	gid, _ := g.body["id"].(string)
	if got := g.header.Get("Location"); got != "Groups/"+gid {
		t.Errorf("POST /Groups Location: got %q, want %q", got, "Groups/"+gid)
	}
	if got := g.body["members"]; !cmp.Equal(got, []any{}) {
		t.Errorf("POST /Groups members: got %v, want [] (Identity Center answers none)", got)
	}
	if r := c.must(204, "DELETE", "/Groups/"+gid, nil); r.raw != "" {
		t.Errorf("DELETE body: got %q, want none", r.raw)
	}
}

// TestIdentityStoreRoutes pins the answers around the identitystore endpoint.
func TestIdentityStoreRoutes(t *testing.T) {
	srv, _ := start(t, emulator.Options{})
	for _, tc := range []struct{ method, path, auth, target, wantType string }{
		{"POST", "/identitystore/x", "AWS4-HMAC-SHA256 x", "AWSIdentityStore.ListUsers", "UnknownOperationException"},
		{"GET", "/identitystore", "AWS4-HMAC-SHA256 x", "AWSIdentityStore.ListUsers", "ValidationException"},
		{"POST", "/identitystore/", "", "AWSIdentityStore.ListUsers", "MissingAuthenticationTokenException"},
		{"POST", "/identitystore", "AWS4-HMAC-SHA256 x", "AWSIdentityStore.Nothing", "UnknownOperationException"},
		{"POST", "/identitystore/", "AWS4-HMAC-SHA256 x", "AWSIdentityStore.ListUsers", "ResourceNotFoundException"},
	} {
		req, err := http.NewRequest(tc.method, srv.HTTP.URL+tc.path, strings.NewReader(`{"IdentityStoreId":"d-nothing"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", tc.target)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := srv.HTTP.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Amzn-ErrorType"); resp.StatusCode != 400 || got != tc.wantType {
			t.Errorf("%s %s %s: got %d %s, want 400 %s", tc.method, tc.path, tc.target, resp.StatusCode, got, tc.wantType)
		}
	}
}

// TestSchemasSpelling pins that a POST or PUT body must spell "schemas" and the core schema URN
// exactly, though other attribute names compare without case.
func TestSchemasSpelling(t *testing.T) {
	_, c := start(t, emulator.Options{})
	id := c.createUser("carol")
	for name, mangle := range map[string]func(string) string{
		"attribute": func(b string) string { return strings.Replace(b, `"schemas"`, `"Schemas"`, 1) },
		"urn":       func(b string) string { return strings.Replace(b, `:core:2.0:`, `:Core:2.0:`, 1) },
	} {
		for _, tc := range []struct{ method, path, body string }{
			{"POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dan","displayName":"Dan","name":{"givenName":"D","familyName":"N"}}`},
			{"PUT", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"carol","displayName":"C","name":{"givenName":"C","familyName":"N"}}`},
			{"POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"g"}`},
		} {
			if r := c.do(tc.method, tc.path, mangle(tc.body)); r.status != 400 {
				t.Errorf("%s %s with the %s misspelt: got status %d, want 400; body %s", tc.method, tc.path, name, r.status, r.raw)
			}
		}
	}
	c.must(201, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"USERNAME":"dan","displayname":"Dan","Name":{"givenName":"D","familyName":"N"}}`)
}
