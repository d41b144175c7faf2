package awsaccess

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/emulator"
)

func TestReaderDefaultOrganization(t *testing.T) {
	e := start(t, emulator.Options{})
	c := e.client(Options{})
	ctx := context.Background()

	inst, err := c.Instance(ctx)
	if err != nil {
		t.Fatalf("Instance: %v", err)
	}
	if diff := cmp.Diff(e.inst, inst); diff != "" {
		t.Errorf("Instance (-want +got):\n%s", diff)
	}

	org, err := c.Organization(ctx)
	if err != nil {
		t.Fatalf("Organization: %v", err)
	}
	ids := e.srv.Emu.AccountIDs()
	if len(org.Accounts) != emulator.DefaultAccounts || len(ids) != emulator.DefaultAccounts {
		t.Fatalf("Organization has %d accounts, the emulator %d, want %d", len(org.Accounts), len(ids), emulator.DefaultAccounts)
	}
	if org.ManagementAccountID != ids[0] {
		t.Errorf("ManagementAccountID = %s, want %s", org.ManagementAccountID, ids[0])
	}
	units := map[string]access.OrganizationalUnit{}
	byName := map[string]string{}
	for _, u := range org.Units {
		units[u.ID] = u
		byName[u.Name] = u.ID
	}
	for _, name := range []string{"Root", "Security", "Workloads", "Prod", "Dev", "Sandbox"} {
		if byName[name] == "" {
			t.Errorf("no unit named %s in %v", name, org.Units)
		}
	}
	if got := units[byName["Prod"]].ParentID; got != byName["Workloads"] {
		t.Errorf("Prod's parent = %s, want Workloads %s", got, byName["Workloads"])
	}
	perUnit := map[string]int{}
	for _, a := range org.Accounts {
		perUnit[units[a.ParentID].Name]++
		if a.Status != "ACTIVE" || a.Name == "" || a.Email == "" {
			t.Errorf("account %+v: want ACTIVE with a name and an email", a)
		}
		// The path runs from the root down to the parent, each a child of the one before.
		if len(a.Path) == 0 || a.Path[0] != byName["Root"] || a.Path[len(a.Path)-1] != a.ParentID {
			t.Errorf("account %s path %v: want root .. %s", a.Name, a.Path, a.ParentID)
		}
		for i := 1; i < len(a.Path); i++ {
			if units[a.Path[i]].ParentID != a.Path[i-1] {
				t.Errorf("account %s path %v: %s is not a child of %s", a.Name, a.Path, a.Path[i], a.Path[i-1])
			}
		}
		switch units[a.ParentID].Name {
		case "Prod":
			if a.Tags["env"] != "prod" || !slices.Contains(a.Path, byName["Workloads"]) {
				t.Errorf("Prod account %s: tags %v path %v, want env=prod under Workloads", a.Name, a.Tags, a.Path)
			}
		case "Root":
			if a.ID != org.ManagementAccountID {
				t.Errorf("account %s in the root, want only the management account there", a.Name)
			}
		}
	}
	want := map[string]int{"Root": 1, "Security": 2, "Prod": 3, "Dev": 3, "Sandbox": 3}
	if diff := cmp.Diff(want, perUnit); diff != "" {
		t.Errorf("accounts per unit (-want +got):\n%s", diff)
	}

	sets, err := c.PermissionSets(ctx, inst)
	if err != nil || len(sets) != 0 {
		t.Errorf("PermissionSets on a new instance = %v, %v; want none", sets, err)
	}
	got, err := c.Assignments(ctx, inst, e.groups(t, 2))
	if err != nil || len(got) != 0 {
		t.Errorf("Assignments on a new instance = %v, %v; want none", got, err)
	}
}

func TestReaderPagesThroughManyAccounts(t *testing.T) {
	// 70 accounts: 22 or 23 in each of Prod, Dev and Sandbox, which the organizations API
	// lists in 2 pages of at most 20.
	e := start(t, emulator.Options{Access: emulator.AccessOptions{Accounts: 70}})
	c := e.client(Options{})
	org, err := c.Organization(context.Background())
	if err != nil {
		t.Fatalf("Organization: %v", err)
	}
	var got []string
	for _, a := range org.Accounts {
		got = append(got, a.ID)
	}
	want := e.srv.Emu.AccountIDs()
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("account ids (-want +got):\n%s", diff)
	}
}

func TestReaderSeesANewAccount(t *testing.T) {
	e := start(t, emulator.Options{})
	c := e.client(Options{})
	id, err := e.srv.Emu.AddAccount("workload-prod-new", "Prod", map[string]string{"env": "prod", "team": "data"})
	if err != nil {
		t.Fatalf("AddAccount: %v", err)
	}
	if _, err := e.srv.Emu.AddAccount("workload-prod-new", "Prod", nil); err == nil {
		t.Errorf("AddAccount of a name that exists: got no error")
	}
	org, err := c.Organization(context.Background())
	if err != nil {
		t.Fatalf("Organization: %v", err)
	}
	for _, a := range org.Accounts {
		if a.ID != id {
			continue
		}
		if a.Name != "workload-prod-new" || a.Tags["team"] != "data" || len(a.Path) != 3 {
			t.Errorf("new account = %+v, want workload-prod-new tagged team=data under Root/Workloads/Prod", a)
		}
		return
	}
	t.Errorf("new account %s not in the organization read: %+v", id, org.Accounts)
}
