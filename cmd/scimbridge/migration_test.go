package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admin "google.golang.org/api/admin/directory/v1"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

// The shapes in which the tools before scimbridge leave users and groups in Identity Center, read
// from their sources (awslabs/ssosync internal/aws/users.go, groups.go and internal/sync.go;
// slashdevops/idp-scim-sync internal/idp/helpers.go, internal/scim/helpers.go):
//
//   - ssosync since its 2026 SCIM rework: userName = primaryEmail, externalId = the Google user
//     id, displayName = "Given Family", name.givenName/familyName, one work email (primary) and
//     an empty work address; groups: displayName = the group's name (sync method users_groups,
//     the default), externalId = the Google group id.
//   - ssosync before it: the same without any externalId.
//   - idp-scim-sync: userName = primaryEmail, externalId = the Google user id, displayName =
//     name.fullName, name.givenName/familyName/formatted, the user's emails (else the primary
//     one, type work); groups: displayName = name, externalId = the Google group id.
type peerShape struct {
	name       string
	externalID bool // the tool writes the Google id as externalId
	user       func(u *admin.User) map[string]any
	group      func(g *admin.Group) map[string]any
	adopt      string // the sync.adopt mode that takes its objects over
	matchedBy  string // what the plan says matched a user
}

var peerShapes = []peerShape{
	{
		name: "ssosync", externalID: true, adopt: "external_id", matchedBy: "external_id",
		user: func(u *admin.User) map[string]any {
			return map[string]any{
				"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": u.PrimaryEmail,
				"externalId": u.Id, "displayName": u.Name.GivenName + " " + u.Name.FamilyName,
				"name":   map[string]any{"givenName": u.Name.GivenName, "familyName": u.Name.FamilyName},
				"active": !u.Suspended, "emails": []any{map[string]any{"value": u.PrimaryEmail, "type": "work", "primary": true}},
				"addresses": []any{map[string]any{"type": "work"}},
			}
		},
		group: func(g *admin.Group) map[string]any {
			return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": g.Name, "externalId": g.Id}
		},
	},
	{
		name: "ssosync-before-2026", externalID: false, adopt: "name", matchedBy: "userName",
		user: func(u *admin.User) map[string]any {
			return map[string]any{
				"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": u.PrimaryEmail,
				"displayName": u.Name.GivenName + " " + u.Name.FamilyName,
				"name":        map[string]any{"givenName": u.Name.GivenName, "familyName": u.Name.FamilyName},
				"active":      !u.Suspended, "emails": []any{map[string]any{"value": u.PrimaryEmail, "type": "work", "primary": true}},
				"addresses": []any{map[string]any{"type": "work"}},
			}
		},
		group: func(g *admin.Group) map[string]any {
			return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": g.Name}
		},
	},
	{
		name: "idp-scim-sync", externalID: true, adopt: "external_id", matchedBy: "external_id",
		user: func(u *admin.User) map[string]any {
			return map[string]any{
				"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": u.PrimaryEmail,
				"externalId": u.Id, "displayName": u.Name.FullName,
				"name":   map[string]any{"givenName": u.Name.GivenName, "familyName": u.Name.FamilyName, "formatted": u.Name.FullName},
				"active": !u.Suspended, "emails": []any{map[string]any{"value": u.PrimaryEmail, "type": "work", "primary": true}},
			}
		},
		group: func(g *admin.Group) map[string]any {
			return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": g.Name, "externalId": g.Id}
		},
	},
}

// scimCreate POSTs a resource to the emulator and returns its id.
func scimCreate(t *testing.T, emu *emulatortest.Server, kind string, body map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, emu.URL+"/"+kind, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+emu.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s %s: %d %v", kind, b, resp.StatusCode, err)
	}
	return out.ID
}

// scimAddMembers adds members to a group, as the tools do, with one PATCH.
func scimAddMembers(t *testing.T, emu *emulatortest.Server, group string, users []string) {
	t.Helper()
	var vals []any
	for _, u := range users {
		vals = append(vals, map[string]any{"value": u})
	}
	b, _ := json.Marshal(map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "add", "path": "members", "value": vals}},
	})
	req, _ := http.NewRequest(http.MethodPatch, emu.URL+"/Groups/"+group, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+emu.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PATCH group %s: %d", group, resp.StatusCode)
	}
}

// migrationResult is what the migration test reads of `sync --output json`.
type migrationResult struct {
	ExitCode int `json:"exitCode"`
	Summary  struct {
		CreateUsers, UpdateUsers, DeleteUsers, DisableUsers int
		CreateGroups, UpdateGroups, DeleteGroups            int
		AddMembers, RemoveMembers, Adopt, Clashes           int
	} `json:"summary"`
}

// TestMigrationFromPeerTools fills the embedded Identity Center the way ssosync (both shapes)
// and idp-scim-sync leave it, from the same Google directory that scimbridge then reads through
// the fake Directory API, including a person and a group that left Google since the old tool's
// last run. Without sync.adopt every run exits 5 naming the mode; the dry run with it shows the
// adoption; the sync takes everything over with 0 creates and 0 deletes and the next run has
// nothing to do; the leftovers stay untouched until sync.adopt_unmatched (with
// --allow-deletes) deletes them, which only works where the tool wrote an externalId.
func TestMigrationFromPeerTools(t *testing.T) {
	for _, shape := range peerShapes {
		t.Run(shape.name, func(t *testing.T) {
			t.Parallel()
			testMigration(t, shape)
		})
	}
}

func testMigration(t *testing.T, shape peerShape) {
	fake, _, keyFile := googleFake(t)
	people := []*admin.User{
		{Id: "101", PrimaryEmail: "alice@example.com", Name: &admin.UserName{GivenName: "Alice", FamilyName: "Liddell", FullName: "Alice Liddell"}},
		{Id: "102", PrimaryEmail: "bob@example.com", Name: &admin.UserName{GivenName: "Bob", FamilyName: "Builder", FullName: "Bob Builder"}},
		{Id: "103", PrimaryEmail: "carol@example.com", Name: &admin.UserName{GivenName: "Carol", FamilyName: "Danvers", FullName: "Carol Danvers"}},
		{Id: "104", PrimaryEmail: "dave@example.com", Name: &admin.UserName{GivenName: "Dave", FamilyName: "Lister", FullName: "Dave Lister"}},
	}
	leaver := &admin.User{Id: "199", PrimaryEmail: "leaver@example.com", Name: &admin.UserName{GivenName: "Lee", FamilyName: "Ver", FullName: "Lee Ver"}}
	groups := []*admin.Group{
		{Id: "g-admins", Email: "aws-admins@example.com", Name: "AWS Admins"},
		{Id: "g-devs", Email: "aws-developers@example.com", Name: "AWS Developers"},
	}
	oldGroup := &admin.Group{Id: "g-old", Email: "aws-old@example.com", Name: "AWS Old Team"}
	members := map[string][]*admin.User{"g-admins": {people[0]}, "g-devs": {people[1], people[2], people[3]}}
	fake.AddUser(people...)
	for _, g := range groups {
		var ms []*admin.Member
		for _, u := range members[g.Id] {
			ms = append(ms, &admin.Member{Id: u.Id, Email: u.PrimaryEmail, Type: "USER"})
		}
		fake.AddGroup(g, ms...)
	}

	// The target as the old tool left it, plus a user and a group made by hand (never taken).
	emu := emulatortest.Start(t, emulator.Options{})
	ids := map[string]string{}
	for _, u := range append(slices.Clone(people), leaver) {
		ids[u.Id] = scimCreate(t, emu, "Users", shape.user(u))
	}
	for _, g := range append(slices.Clone(groups), oldGroup) {
		gid := scimCreate(t, emu, "Groups", shape.group(g))
		var us []string
		for _, u := range members[g.Id] {
			us = append(us, ids[u.Id])
		}
		if g == oldGroup {
			us = []string{ids[leaver.Id]}
		}
		scimAddMembers(t, emu, gid, us)
	}
	scimCreate(t, emu, "Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "break-glass@example.com", "displayName": "Break Glass",
		"name": map[string]any{"givenName": "Break", "familyName": "Glass"}})
	before, err := emu.Emu.Dump()
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	token := filepath.Join(dir, "scim-token")
	if err := os.WriteFile(token, []byte(emu.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig := func(syncKeys string) string {
		cfg := fmt.Sprintf(`source:
  type: google
  google:
    subject: admin@example.com
    service_account_key_file: %s
    endpoint: %s/
target:
  scim_url: %s
  token_file: %s
sync:
%s
data_dir: data
`, keyFile, fake.URL, emu.URL, token, syncKeys)
		if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return "c.yaml"
	}
	syncJSON := func(args ...string) migrationResult {
		t.Helper()
		out, errOut, code := runEnv(t, dir, exampleEnv(), append([]string{"sync", "--output", "json", "--config", "c.yaml"}, args...)...)
		var r migrationResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("sync %v: exit %d, output not JSON: %v\n%s\n%s", args, code, err, out, errOut)
		}
		if r.ExitCode != code {
			t.Errorf("sync %v: JSON exitCode %d, process %d", args, r.ExitCode, code)
		}
		return r
	}

	// Without adopt: nothing is written, exit 5, and the plan names the mode that would match.
	writeConfig("  policy: sync")
	out, errOut, code := runEnv(t, dir, exampleEnv(), "sync", "--dry-run", "--config", "c.yaml")
	if code != 5 || !strings.Contains(out+errOut, "adopt") || !strings.Contains(out+errOut, shape.adopt) {
		t.Fatalf("without adopt: exit %d, want 5 naming %s\n%s\n%s", code, shape.adopt, out, errOut)
	}

	// The dry run with the mode shows every object adopted, nothing created or deleted.
	writeConfig("  policy: sync\n  adopt: " + shape.adopt)
	out, errOut, code = runEnv(t, dir, exampleEnv(), "sync", "--dry-run", "--config", "c.yaml")
	if want := "matched by " + shape.matchedBy; code != 2 || !strings.Contains(out, want) {
		t.Fatalf("dry run with adopt: exit %d, want 2 and the adoption shown\n%s\n%s", code, out, errOut)
	}
	r := syncJSON("--dry-run")
	s := r.Summary
	if s.CreateUsers+s.CreateGroups+s.DeleteUsers+s.DeleteGroups+s.DisableUsers != 0 || s.Adopt != len(people)+len(groups) || s.Clashes != 0 {
		t.Errorf("dry run with adopt: got %+v, want %d adoptions and no create, delete or clash", s, len(people)+len(groups))
	}

	r = syncJSON()
	if s := r.Summary; r.ExitCode != 0 || s.CreateUsers+s.CreateGroups+s.DeleteUsers+s.DeleteGroups+s.DisableUsers != 0 || s.AddMembers+s.RemoveMembers != 0 {
		t.Fatalf("sync with adopt: exit %d, summary %+v; want 0 and no create, delete or membership change", r.ExitCode, s)
	}
	after, err := emu.Emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := objectIDs(after), objectIDs(before); !slices.Equal(got, want) {
		t.Errorf("objects after the adopting sync:\ngot  %v\nwant %v (the same objects, none re-created)", got, want)
	}
	if len(after.Memberships) != len(before.Memberships) {
		t.Errorf("got %d memberships after the adopting sync, want %d", len(after.Memberships), len(before.Memberships))
	}
	out, errOut, code = runEnv(t, dir, exampleEnv(), "sync", "--full", "--config", "c.yaml")
	if code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("second sync: exit %d, want No changes\n%s\n%s", code, out, errOut)
	}

	// The leftovers (the leaver, the old group) are still there, untouched. adopt_unmatched takes
	// them over and deletes them, where the old tool left an externalId; the guards ask first.
	writeConfig("  policy: sync\n  adopt: " + shape.adopt + "\n  adopt_unmatched: true")
	r = syncJSON("--allow-deletes", "2")
	d, err := emu.Emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	leftovers := 0
	for _, u := range d.Users {
		if u.UserName == leaver.PrimaryEmail {
			leftovers++
		}
	}
	for _, g := range d.Groups {
		if g.DisplayName == oldGroup.Name {
			leftovers++
		}
	}
	if shape.externalID {
		if r.ExitCode != 0 || r.Summary.DeleteUsers != 1 || r.Summary.DeleteGroups != 1 || leftovers != 0 {
			t.Errorf("adopt_unmatched: exit %d, summary %+v, %d leftovers; want the leaver and the old group deleted", r.ExitCode, r.Summary, leftovers)
		}
	} else if r.Summary.DeleteUsers+r.Summary.DeleteGroups != 0 || leftovers != 2 {
		t.Errorf("adopt_unmatched without externalIds: summary %+v, %d leftovers; want both left alone (they cannot be told from hand-made objects)", r.Summary, leftovers)
	}
	for _, u := range d.Users {
		if u.UserName == "break-glass@example.com" {
			return
		}
	}
	t.Errorf("the hand-made break-glass user is gone")
}

// objectIDs lists the ids of a dump's users and groups, sorted.
func objectIDs(d emulator.Dump) []string {
	var ids []string
	for _, u := range d.Users {
		ids = append(ids, "user "+u.ID)
	}
	for _, g := range d.Groups {
		ids = append(ids, "group "+g.ID)
	}
	slices.Sort(ids)
	return ids
}
