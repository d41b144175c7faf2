package emulator_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

func q(filter string) string { return "?filter=" + url.QueryEscape(filter) }

func TestConversation(t *testing.T) {
	srv, c := start(t, emulator.Options{})
	alice := c.createUser("alice")
	bob := c.createUser("bob")

	got := c.must(200, "GET", "/Users/"+alice, nil).body
	if got["userName"] != "alice" || got["externalId"] != "ext-alice" || got["active"] != true {
		t.Errorf("GET user = %v", got)
	}

	// userName filter is case-insensitive.
	r := c.must(200, "GET", "/Users"+q(`userName eq "ALICE"`), nil)
	if res := r.resources(); len(res) != 1 || res[0]["id"] != alice {
		t.Errorf("userName filter = %s", r.raw)
	}
	r = c.must(200, "GET", "/Users"+q(`externalId eq "ext-bob"`), nil)
	if res := r.resources(); len(res) != 1 || res[0]["id"] != bob {
		t.Errorf("externalId filter = %s", r.raw)
	}

	gid := c.createGroup("admins", alice)
	c.must(204, "PATCH", "/Groups/"+gid, patch(op("add", "members", []any{map[string]any{"value": bob}})))
	r = c.must(200, "GET", "/Users"+q(`groups.value eq "`+gid+`"`), nil)
	if n := len(r.resources()); n != 2 {
		t.Errorf("groups.value filter: got %d users, want 2: %s", n, r.raw)
	}
	c.must(204, "PATCH", "/Groups/"+gid, patch(op("remove", `members[value eq "`+alice+`"]`, nil)))
	r = c.must(200, "GET", "/Groups"+q(`id eq "`+gid+`" and members eq "`+alice+`"`), nil)
	if n := len(r.resources()); n != 0 {
		t.Errorf("membership test after removal: got %d, want 0", n)
	}
	r = c.must(200, "GET", "/Groups"+q(`id eq "`+gid+`" and members eq "`+bob+`"`), nil)
	if n := len(r.resources()); n != 1 {
		t.Errorf("membership test: got %d, want 1", n)
	}
	r = c.must(200, "GET", "/Groups"+q(`members.value eq "`+bob+`"`), nil)
	if res := r.resources(); len(res) != 1 || res[0]["id"] != gid {
		t.Errorf("members.value filter = %s", r.raw)
	}

	// Rename through PATCH, PUT a user, delete.
	c.must(204, "PATCH", "/Groups/"+gid, patch(op("replace", "displayName", "operators")))
	if got := c.must(200, "GET", "/Groups/"+gid, nil).body["displayName"]; got != "operators" {
		t.Errorf("displayName after rename = %v", got)
	}
	u := user("bob")
	u["displayName"] = "Robert"
	if got := c.must(200, "PUT", "/Users/"+bob, u).body["displayName"]; got != "Robert" {
		t.Errorf("displayName after PUT = %v", got)
	}
	c.must(204, "DELETE", "/Users/"+alice, nil)
	checkAWSError(t, c.do("GET", "/Users/"+alice, nil), 404)
	checkAWSError(t, c.do("DELETE", "/Users/"+alice, nil), 404)

	d, err := srv.Emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if d.Counts() != "users=1 groups=1 memberships=1" {
		t.Errorf("dump counts = %s", d.Counts())
	}
	if u, ok := d.UserByUserName("BOB"); !ok || u.DisplayName != "Robert" || u.Email != "bob@example.com" || u.ExternalID != "ext-bob" {
		t.Errorf("dumped bob = %+v", u)
	}
	c.must(204, "DELETE", "/Groups/"+gid, nil)
	checkAWSError(t, c.do("GET", "/Groups/"+gid, nil), 404)

	for _, p := range []string{"/ServiceProviderConfig", "/Schemas", "/ResourceTypes",
		"/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "/ResourceTypes/User"} {
		c.must(200, "GET", p, nil)
	}
	for _, p := range []string{"/Bulk", "/Me", "/.search", "/Users/.search", "/"} {
		if r := c.do("GET", p, nil); r.status != 404 {
			t.Errorf("GET %s: status %d, want 404", p, r.status)
		}
	}
}

func TestAuth(t *testing.T) {
	srv, c := start(t, emulator.Options{Tenant: "tenant-1", Token: "secret-token"})
	c.must(200, "GET", "/Users", nil)
	for name, tc := range map[string]struct{ base, token string }{
		"no token":     {srv.URL, ""},
		"wrong token":  {srv.URL, "other"},
		"wrong tenant": {strings.Replace(srv.URL, "tenant-1", "tenant-2", 1), "secret-token"},
	} {
		t.Run(name, func(t *testing.T) {
			r := (&client{t: t, base: tc.base, token: tc.token}).do("GET", "/Users", nil)
			checkAWSError(t, r, 401)
			if strings.Contains(r.raw, "secret-token") {
				t.Errorf("error body leaks the token: %s", r.raw)
			}
		})
	}
	stats := &client{t: t, base: srv.HTTP.URL, token: "nope"}
	checkAWSError(t, stats.do("GET", emulator.StatsPath, nil), 401)
}

func TestDuplicates(t *testing.T) {
	_, c := start(t, emulator.Options{})
	c.createUser("carol")
	for _, name := range []string{"carol", "CAROL", "Carol"} {
		r := c.do("POST", "/Users", user(name))
		checkAWSError(t, r, 409)
		if r.body["detail"] != "Refused to create a new, duplicate resource." {
			t.Errorf("detail = %v", r.body["detail"])
		}
	}
	c.createGroup("team")
	checkAWSError(t, c.do("POST", "/Groups", group("team")), 409)
	checkAWSError(t, c.do("POST", "/Groups", group("TEAM")), 409)
	other := c.createGroup("other")
	checkAWSError(t, c.do("PATCH", "/Groups/"+other, patch(op("replace", "displayName", "team"))), 409)
	dave := c.createUser("dave")
	checkAWSError(t, c.do("PATCH", "/Users/"+dave, patch(op("replace", "userName", "carol"))), 409)
	checkAWSError(t, c.do("PUT", "/Users/"+dave, user("Carol")), 409)
}

func TestConcurrentCreates(t *testing.T) {
	_, c := start(t, emulator.Options{})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.do("POST", "/Users", user("same"))
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[201] != 1 || statuses[409] != 49 {
		t.Errorf("statuses = %v, want 1x201 and 49x409", statuses)
	}
	if n := len(c.must(200, "GET", "/Users", nil).resources()); n != 1 {
		t.Errorf("users = %d, want 1", n)
	}
}

func TestUserRules(t *testing.T) {
	_, c := start(t, emulator.Options{})
	mgr := c.createUser("manager")
	with := func(mod func(map[string]any)) map[string]any {
		u := user("subject")
		mod(u)
		return u
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name string
		body any
	}{
		{"no userName", with(func(u map[string]any) { delete(u, "userName") })},
		{"no displayName", with(func(u map[string]any) { delete(u, "displayName") })},
		{"no givenName", with(func(u map[string]any) { u["name"] = map[string]any{"familyName": "F"} })},
		{"no familyName", with(func(u map[string]any) { u["name"] = map[string]any{"givenName": "G"} })},
		{"no name", with(func(u map[string]any) { delete(u, "name") })},
		{"two emails", with(func(u map[string]any) {
			u["emails"] = []any{map[string]any{"value": "a@x", "primary": true}, map[string]any{"value": "b@x"}}
		})},
		{"email not primary", with(func(u map[string]any) { u["emails"] = []any{map[string]any{"value": "a@x"}} })},
		{"email primary false", with(func(u map[string]any) { u["emails"] = []any{map[string]any{"value": "a@x", "primary": false}} })},
		{"two addresses", with(func(u map[string]any) {
			u["addresses"] = []any{map[string]any{"locality": "A"}, map[string]any{"locality": "B"}}
		})},
		{"two phoneNumbers", with(func(u map[string]any) {
			u["phoneNumbers"] = []any{map[string]any{"value": "1"}, map[string]any{"value": "2"}}
		})},
		{"two roles", with(func(u map[string]any) { u["roles"] = []any{map[string]any{"value": "1"}, map[string]any{"value": "2"}} })},
		{"password", with(func(u map[string]any) { u["password"] = "hunter2" })},
		{"ims", with(func(u map[string]any) { u["ims"] = []any{map[string]any{"value": "x"}} })},
		{"photos", with(func(u map[string]any) { u["photos"] = []any{map[string]any{"value": "https://x"}} })},
		{"x509Certificates", with(func(u map[string]any) { u["x509Certificates"] = []any{map[string]any{"value": "x"}} })},
		{"entitlements", with(func(u map[string]any) { u["entitlements"] = []any{map[string]any{"value": "x"}} })},
		{"groups on create", with(func(u map[string]any) { u["groups"] = []any{map[string]any{"value": "g"}} })},
		{"display sub-attribute", with(func(u map[string]any) {
			u["emails"] = []any{map[string]any{"value": "a@x", "primary": true, "display": "A"}}
		})},
		{"manager.displayName", with(func(u map[string]any) {
			u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = map[string]any{
				"manager": map[string]any{"value": mgr, "displayName": "Boss"}}
		})},
		{"manager not a user", with(func(u map[string]any) {
			u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = map[string]any{"manager": map[string]any{"value": "nobody"}}
		})},
		{"unknown attribute", with(func(u map[string]any) { u["favouriteColour"] = "blue" })},
		{"unknown sub-attribute", with(func(u map[string]any) { u["name"] = map[string]any{"givenName": "G", "familyName": "F", "x": 1} })},
		{"userName wrong type", with(func(u map[string]any) { u["userName"] = 42 })},
		{"active wrong type", with(func(u map[string]any) { u["active"] = "yes" })},
		{"emails not an array", with(func(u map[string]any) { u["emails"] = map[string]any{"value": "a@x"} })},
		{"userName too long", with(func(u map[string]any) { u["userName"] = long(129) })},
		{"userName empty", with(func(u map[string]any) { u["userName"] = "" })},
		{"displayName too long", with(func(u map[string]any) { u["displayName"] = long(1025) })},
		{"givenName too long", with(func(u map[string]any) { u["name"] = map[string]any{"givenName": long(1025), "familyName": "F"} })},
		{"externalId too long", with(func(u map[string]any) { u["externalId"] = long(257) })},
		{"externalId empty", with(func(u map[string]any) { u["externalId"] = "" })},
		{"malformed JSON", `{"userName": "x",`},
		{"JSON array", `[]`},
		{"trailing garbage", `{"userName":"x"} {}`},
		{"wrong schema", with(func(u map[string]any) { u["schemas"] = []string{"urn:x"} })},
		{"no schemas", with(func(u map[string]any) { delete(u, "schemas") })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do("POST", "/Users", tc.body)
			checkAWSError(t, r, 400)
		})
	}
	// The limits are inclusive.
	ok := with(func(u map[string]any) {
		u["userName"] = long(128)
		u["displayName"] = long(1024)
		u["externalId"] = long(256)
		u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = map[string]any{
			"employeeNumber": "7", "department": "R&D", "manager": map[string]any{"value": mgr}}
	})
	r := c.must(201, "POST", "/Users", ok)
	ext, _ := r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
	if m, _ := ext["manager"].(map[string]any); m["value"] != mgr || ext["department"] != "R&D" {
		t.Errorf("enterprise extension = %v", ext)
	}
	r = c.must(200, "GET", "/Users"+q(`id eq "`+r.body["id"].(string)+`" and manager eq "`+mgr+`"`), nil)
	if n := len(r.resources()); n != 1 {
		t.Errorf("id and manager filter: got %d, want 1", n)
	}
}

func TestOversizedBody(t *testing.T) {
	_, c := start(t, emulator.Options{})
	u := user("big")
	u["title"] = strings.Repeat("x", 2<<20)
	r := c.do("POST", "/Users", u)
	if r.status < 400 || r.status >= 500 {
		t.Fatalf("status %d, want 4xx", r.status)
	}
	checkAWSError(t, r, r.status)
}

func TestUserPatch(t *testing.T) {
	_, c := start(t, emulator.Options{})
	id := c.createUser("erin")
	mgr := c.createUser("boss")
	for _, tc := range []struct {
		name string
		ops  []map[string]any
	}{
		{"remove without path", []map[string]any{op("remove", "", nil)}},
		{"add without value", []map[string]any{op("add", "title", nil)}},
		{"replace without value", []map[string]any{op("replace", "title", nil)}},
		{"remove userName", []map[string]any{op("remove", "userName", nil)}},
		{"remove active", []map[string]any{op("remove", "active", nil)}},
		{"userName twice", []map[string]any{op("replace", "userName", "a"), op("replace", "userName", "b")}},
		{"active twice", []map[string]any{op("replace", "active", false), op("replace", "", map[string]any{"active": true})}},
		{"remove required displayName", []map[string]any{op("remove", "displayName", nil)}},
		{"remove required givenName", []map[string]any{op("remove", "name.givenName", nil)}},
		{"groups", []map[string]any{op("add", "groups", []any{map[string]any{"value": "g"}})}},
		{"password", []map[string]any{op("replace", "password", "x")}},
		{"second email", []map[string]any{op("add", "emails", []any{map[string]any{"value": "b@x", "primary": true}})}},
		{"unknown op", []map[string]any{op("move", "title", "x")}},
		{"unknown path", []map[string]any{op("replace", "shoeSize", "x")}},
		{"bad path", []map[string]any{op("replace", "emails[type eq", "x")}},
		{"wrong type", []map[string]any{op("replace", "active", "no")}},
		{"manager displayName", []map[string]any{op("replace", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
			map[string]any{"value": mgr, "displayName": "B"})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAWSError(t, c.do("PATCH", "/Users/"+id, patch(tc.ops...)), 400)
		})
	}
	checkAWSError(t, c.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`), 400)
	checkAWSError(t, c.do("PATCH", "/Users/nope", patch(op("replace", "title", "x"))), 404)

	r := c.must(200, "PATCH", "/Users/"+id, patch(
		op("replace", "active", false),
		op("replace", "name.givenName", "Erin"),
		op("replace", `emails[type eq "work"].value`, "erin@new.example"),
		op("add", "title", "Engineer"),
		op("replace", "", map[string]any{"displayName": "Erin E", "nickName": "ee"}),
		op("replace", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", mgr),
		op("add", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "Ops"),
		op("replace", "externalId", "ext-erin-2"),
	))
	b := r.body
	ext, _ := b["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
	m, _ := ext["manager"].(map[string]any)
	emails, _ := b["emails"].([]any)
	if b["active"] != false || b["title"] != "Engineer" || b["displayName"] != "Erin E" || b["externalId"] != "ext-erin-2" ||
		b["name"].(map[string]any)["givenName"] != "Erin" || m["value"] != mgr || ext["department"] != "Ops" ||
		len(emails) != 1 || emails[0].(map[string]any)["value"] != "erin@new.example" {
		t.Errorf("after PATCH: %s", r.raw)
	}
	r = c.must(200, "PATCH", "/Users/"+id, patch(op("remove", "title", nil),
		op("remove", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", nil)))
	if _, ok := r.body["title"]; ok {
		t.Errorf("title not removed: %s", r.raw)
	}
	if strings.Contains(r.raw, mgr) {
		t.Errorf("manager not removed: %s", r.raw)
	}
}

func TestGroupRules(t *testing.T) {
	_, c := start(t, emulator.Options{})
	var users []string
	for i := range 102 {
		users = append(users, c.createUser(fmt.Sprintf("u%03d", i)))
	}
	checkAWSError(t, c.do("POST", "/Groups", group("too-many", users[:101]...)), 400)
	gid := c.createGroup("hundred", users[:100]...)
	r := c.must(200, "GET", "/Groups/"+gid, nil)
	if ms, ok := r.body["members"].([]any); !ok || len(ms) != 0 {
		t.Errorf("GET group members = %v, want []", r.body["members"])
	}
	for _, g := range c.must(200, "GET", "/Groups", nil).resources() {
		if ms, ok := g["members"].([]any); !ok || len(ms) != 0 {
			t.Errorf("listed group members = %v, want []", g["members"])
		}
	}
	members := func(ids ...string) []any {
		var out []any
		for _, id := range ids {
			out = append(out, map[string]any{"value": id})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		body any
	}{
		{"101 member changes", patch(op("add", "members", members(users[100:102]...)),
			op("remove", "members", members(users[:99]...)))},
		{"remove all members", patch(op("remove", "members", nil))},
		{"replace all members", patch(op("replace", "members", members(users[0])))},
		{"replace members without path", patch(op("replace", "", map[string]any{"members": members(users[0])}))},
		{"patch other attribute", patch(op("replace", "meta", "x"))},
		{"remove displayName", patch(op("remove", "displayName", nil))},
		{"unknown member", patch(op("add", "members", members("no-such-user")))},
		{"member display", patch(op("add", "members", []any{map[string]any{"value": users[0], "display": "x"}}))},
		{"empty displayName", patch(op("replace", "displayName", ""))},
		{"member filter or", patch(op("remove", `members[value eq "a" or value eq "b"]`, nil))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAWSError(t, c.do("PATCH", "/Groups/"+gid, tc.body), 400)
		})
	}
	checkAWSError(t, c.do("PUT", "/Groups/"+gid, group("hundred")), 405)
	checkAWSError(t, c.do("POST", "/Groups", group("ghost", "no-such-user")), 400)
	checkAWSError(t, c.do("POST", "/Groups", map[string]any{"externalId": "x"}), 400)
	checkAWSError(t, c.do("POST", "/Groups", map[string]any{"displayName": "no-schemas"}), 400)
	// 100 changes are fine.
	c.must(204, "PATCH", "/Groups/"+gid, patch(op("add", "members", members(users[100:102]...)),
		op("remove", "members", members(users[:98]...))))
	r = c.must(200, "GET", "/Users"+q(`groups.value eq "`+gid+`"`), nil)
	if n := len(r.resources()); n != 4 {
		t.Errorf("members after patch = %d, want 4", n)
	}
}

func TestFilters(t *testing.T) {
	_, c := start(t, emulator.Options{})
	uid := c.createUser("frank")
	gid := c.createGroup("staff", uid)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/Users" + q(`userName eq "frank"`), 200},
		{"/Users" + q(`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "frank"`), 200},
		{"/Users" + q(`externalId eq "x"`), 200},
		{"/Users" + q(`groups.value eq "`+gid+`"`), 200},
		{"/Users" + q(`id eq "`+uid+`" and manager eq "x"`), 200},
		{"/Groups" + q(`displayName eq "staff"`), 200},
		{"/Groups" + q(`externalId eq "ext-staff"`), 200},
		{"/Groups" + q(`members.value eq "`+uid+`"`), 200},
		{"/Groups" + q(`id eq "`+gid+`" and members eq "`+uid+`"`), 200},
		{"/Groups" + q(`members eq "`+uid+`" and id eq "`+gid+`"`), 200},
		{"/Users" + q(`userName ne "frank"`), 400},
		{"/Users" + q(`userName co "fr"`), 400},
		{"/Users" + q(`userName sw "fr"`), 400},
		{"/Users" + q(`userName pr`), 400},
		{"/Users" + q(`userName eq "a" or userName eq "b"`), 400},
		{"/Users" + q(`not (userName eq "a")`), 400},
		{"/Users" + q(`emails[value eq "a"]`), 400},
		{"/Users" + q(`displayName eq "a"`), 400},
		{"/Users" + q(`userName eq "a" and externalId eq "b"`), 400},
		{"/Users" + q(`userName eq 42`), 400},
		{"/Users" + q(`userName eq`), 400},
		{"/Users" + q(`((((`), 400},
		{"/Groups" + q(`displayName co "s"`), 400},
		{"/Groups" + q(`members eq "`+uid+`"`), 400},
		{"/Groups" + q(`members.value eq "no-such-user"`), 404},
		{"/Groups" + q(`id eq "`+gid+`" and members eq "no-such-user"`), 404},
		{"/Users?attributes=userName", 400},
		{"/Users?excludedAttributes=emails", 400},
		{"/Users?sortBy=userName", 400},
		{"/Users?startIndex=1", 400},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := c.do("GET", tc.path, nil)
			if tc.status != 200 {
				checkAWSError(t, r, tc.status)
			} else if r.status != 200 {
				t.Errorf("got %d, want 200: %s", r.status, r.raw)
			}
		})
	}
}

func TestPaging(t *testing.T) {
	_, c := start(t, emulator.Options{})
	const n = 230
	for i := range n {
		c.createUser(fmt.Sprintf("p%03d", i))
	}
	seen := map[string]bool{}
	pages := 0
	for cursor := ""; ; {
		r := c.must(200, "GET", "/Users?count=100&cursor="+url.QueryEscape(cursor), nil)
		pages++
		res := r.resources()
		if ipp, _ := r.body["itemsPerPage"].(float64); int(ipp) != len(res) {
			t.Errorf("itemsPerPage = %v, resources %d", r.body["itemsPerPage"], len(res))
		}
		if _, ok := r.body["totalResults"]; ok {
			t.Errorf("cursor form carries totalResults")
		}
		for _, u := range res {
			seen[u["id"].(string)] = true
		}
		next, _ := r.body["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != n || pages != 3 {
		t.Errorf("paged %d users in %d pages, want %d in 3", len(seen), pages, n)
	}
	// Default count is 100.
	r := c.must(200, "GET", "/Users", nil)
	if len(r.resources()) != 100 || r.body["nextCursor"] == nil {
		t.Errorf("default page: %d resources, nextCursor %v", len(r.resources()), r.body["nextCursor"])
	}
	other := c.must(200, "GET", "/Groups?count=1", nil) // no groups: no cursor
	if other.body["nextCursor"] != nil {
		t.Errorf("empty list has a cursor")
	}
	userCursor := c.must(200, "GET", "/Users?count=1", nil).body["nextCursor"].(string)
	for _, p := range []string{
		"/Users?count=0", "/Users?count=101", "/Users?count=abc", "/Users?count=-1",
		"/Users?cursor=not-a-cursor", "/Users?cursor=" + url.QueryEscape("eyJzIjoieCIsImsiOiIxIn0"),
		"/Groups?cursor=" + url.QueryEscape(userCursor),
		"/Users?cursor=" + url.QueryEscape(userCursor) + "&filter=" + url.QueryEscape(`userName eq "p001"`),
	} {
		checkAWSError(t, c.do("GET", p, nil), 400)
	}
}

func TestStrict(t *testing.T) {
	_, c := start(t, emulator.Options{Strict: true})
	for i := range 60 {
		c.createUser(fmt.Sprintf("s%02d", i))
	}
	r := c.must(200, "GET", "/Users?count=100", nil)
	if n := len(r.resources()); n != 50 {
		t.Errorf("strict list: %d resources, want 50", n)
	}
	if r.body["nextCursor"] != nil {
		t.Errorf("strict list has a cursor")
	}
	checkAWSError(t, c.do("GET", "/Users?cursor=", nil), 400)
}

func TestMethodNotAllowed(t *testing.T) {
	_, c := start(t, emulator.Options{})
	checkAWSError(t, c.do("DELETE", "/Users", nil), 405)
	checkAWSError(t, c.do("POST", "/ServiceProviderConfig", "{}"), 405)
	checkAWSError(t, c.do("GET", "/Nothing", nil), 404)
}
