package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickstartAccess: the quickstart acts out the classic setup. A dry run plans the
// assignments on top of the groups it would create; the first sync makes them (Administrators on
// every account of the embedded organization, Finance on the management account); the second
// plans nothing and makes no sso-admin write. access explain shows the way a person gets there.
func TestQuickstartAccess(t *testing.T) {
	dir := quickstart(t)
	out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "--dry-run")
	if code != exitChanges || !strings.Contains(out, `+ assign group "Finance" (created in this run) "Billing" on `) ||
		!strings.Contains(out, "assignments 13 to create, 0 to delete") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = run(t, dir, "sync", "--config", "scimbridge.yaml")
	if code != exitOK || !strings.Contains(out, `+ assign group "Administrators" "AdministratorAccess" on `) ||
		!strings.Contains(out, "Access: 13 assignments created, 0 deleted, 0 failed; permission sets 2 created") {
		t.Fatalf("first sync: exit %d\n%s\n%s", code, out, errOut)
	}
	js, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "-o", "json")
	var res struct {
		Requests map[string]int
		Access   struct {
			Plan struct {
				Desired int `json:"desiredAssignments"`
				Summary struct{ Requests int }
			}
		}
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil || code != exitOK {
		t.Fatalf("second sync: exit %d, %v\n%s\n%s", code, err, js, errOut)
	}
	if res.Access.Plan.Desired != 13 || res.Access.Plan.Summary.Requests != 0 {
		t.Errorf("second sync: access plan of %d assignments with %d requests, want 13 and 0", res.Access.Plan.Desired, res.Access.Plan.Summary.Requests)
	}
	for op, n := range res.Requests {
		name, _ := strings.CutPrefix(op, "access.")
		if name != op && !strings.HasPrefix(name, "List") && !strings.HasPrefix(name, "Describe") && !strings.HasPrefix(name, "Get") {
			t.Errorf("second sync sent %d %s requests, want only reads", n, op)
		}
	}

	out, errOut, code = run(t, dir, "access", "explain", "--config", "scimbridge.yaml", "--user", "grace.hopper@example.com")
	if code != exitOK || !strings.Contains(out, `user "grace.hopper@example.com" (u-1001), member of "Administrators", "Everyone", reaches 12 permission set assignments on 12 accounts:`) ||
		!strings.Contains(out, `"AdministratorAccess" on `) || !strings.Contains(out, `through group "Administrators" [access.assignments[0]]`) {
		t.Errorf("explain: exit %d\n%s\n%s", code, out, errOut)
	}
	js, _, code = run(t, dir, "access", "explain", "--config", "scimbridge.yaml", "--group", "Finance", "-o", "json")
	var ex struct {
		Grants []struct {
			PermissionSet string
			AccountName   string
		}
	}
	if err := json.Unmarshal([]byte(js), &ex); err != nil || code != exitOK || len(ex.Grants) != 1 || ex.Grants[0].PermissionSet != "Billing" || ex.Grants[0].AccountName != "management" {
		t.Errorf("explain --group Finance -o json: exit %d, %v, %+v", code, err, ex)
	}
}

// TestAccessGuardBlocksSync: a config edit that removes Administrators' rule would delete 12
// assignments: the run is blocked (exit 3) with the flag that lets it through, and the flag does.
func TestAccessGuardBlocksSync(t *testing.T) {
	dir := quickstart(t)
	if out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml"); code != exitOK {
		t.Fatalf("first sync: exit %d\n%s\n%s", code, out, errOut)
	}
	cfg := filepath.Join(dir, "scimbridge.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), "    - groups: [Administrators]\n", "    - groups: [Nobody]\n", 1)
	if edited == string(b) {
		t.Fatal("the quickstart config changed: update this test")
	}
	if err := os.WriteFile(cfg, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml")
	if code != exitBlocked || !strings.Contains(out+errOut, "12 of 13 owned account assignments (92.3%) would be deleted") || !strings.Contains(out+errOut, "--allow-assignment-deletes 12") {
		t.Fatalf("blocked sync: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = run(t, dir, "sync", "--config", "scimbridge.yaml", "--allow-assignment-deletes", "12")
	if code != exitOK || !strings.Contains(out, "Access: 0 assignments created, 12 deleted, 0 failed") {
		t.Fatalf("allowed sync: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestNoAccessSectionNoAccessCalls: without access: a sync makes no sso-admin or organizations
// call and its JSON has no access part.
func TestNoAccessSectionNoAccessCalls(t *testing.T) {
	dir := quickstart(t)
	cfg := filepath.Join(dir, "scimbridge.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start, end := strings.Index(string(b), "access:\n"), strings.Index(string(b), "sync:\n")
	if start < 0 || end < start {
		t.Fatal("the quickstart config changed: update this test")
	}
	if err := os.WriteFile(cfg, append(b[:start:start], b[end:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	js, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "-o", "json")
	var res struct {
		Requests map[string]int
		Access   json.RawMessage
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil || code != exitOK {
		t.Fatalf("sync without access: exit %d, %v\n%s", code, err, errOut)
	}
	if res.Access != nil {
		t.Errorf("JSON has an access part: %s", res.Access)
	}
	for op := range res.Requests {
		if strings.HasPrefix(op, "access.") {
			t.Errorf("request %s without an access section", op)
		}
	}
	if !strings.Contains(errOut, "run finished") || strings.Contains(errOut, "component=access") {
		t.Errorf("log mentions the access component:\n%s", errOut)
	}
}
