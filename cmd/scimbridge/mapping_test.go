package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/connectors"
)

func runMapping(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newMappingCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"test"}, args...))
	err := cmd.Execute()
	return out.String(), err
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMappingTestCommand(t *testing.T) {
	quickstart := filepath.Join("..", "..", "deploy", "examples", "scimbridge.yaml")
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{name: "user by id", args: []string{"--config", quickstart, "--id", "u-1006"},
			want: []string{`user "u-1006": in scope`, "userName           ken.thompson@example.com", "manager            u-1005", "department: [\"Engineering\"]"}},
		{name: "user by key", args: []string{"--config", quickstart, "--id", "grace.hopper@example.com"},
			want: []string{`user "u-1001": in scope`}},
		{name: "suspended user", args: []string{"--config", quickstart, "--id", "u-1013"},
			want: []string{"active             false"}},
		{name: "nested group", args: []string{"--config", quickstart, "--id", "g-platform"},
			want: []string{`group "g-platform": in scope`, "members            7 user(s)", "members: [\"u-1004\""}},
		{name: "entry from a file", args: []string{"--config", quickstart, "--source-entry",
			writeFile(t, dir, "e.json", `{"id":"x1","attributes":{"userName":["x@example.com"],"givenName":["X"],"manager":["u-1001"]}}`)},
			want: []string{`user "x1"`, "could not be mapped", `field name.familyName: is required`, `manager reference "u-1001" matches no user`}},
		{name: "group entry from a file", args: []string{"--config", quickstart, "--kind", "group", "--source-entry",
			writeFile(t, dir, "g.json", `{"id":"g9","attributes":{"name":["Nine"]}}`)},
			want: []string{`group "g9": in scope`, "displayName        Nine"}},
		{name: "unknown id", args: []string{"--config", quickstart, "--id", "nobody"}, wantErr: "no such entry"},
		{name: "no selector", args: []string{"--config", quickstart}, wantErr: "exactly one of --id and --source-entry"},
		{name: "bad output", args: []string{"--config", quickstart, "--id", "u-1001", "-o", "xml"}, wantErr: "--output"},
		{name: "entry without id", args: []string{"--config", quickstart, "--source-entry", writeFile(t, dir, "n.json", `{"attributes":{}}`)}, wantErr: "no id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runMapping(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestMappingTestJSON(t *testing.T) {
	out, err := runMapping(t, "--config", filepath.Join("..", "..", "deploy", "examples", "scimbridge.yaml"), "--id", "u-1005", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ex connectors.Explanation
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if !ex.InScope || ex.User == nil || ex.User.Enterprise.Manager != "u-1004" || ex.User.PhoneNumber != "+1 555 0105" {
		t.Errorf("explanation = %+v", ex)
	}
}

func TestMappingTestConfigError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "directory.yaml", "users: []\n")
	cfg := writeFile(t, dir, "c.yaml", "source:\n  type: file\n  file:\n    path: directory.yaml\n\nmapping:\n  user:\n    title: lower(values(\"title\"))\n")
	_, err := runMapping(t, "--config", cfg, "--id", "x")
	if err == nil || !strings.Contains(err.Error(), "mapping.user.title") || !strings.Contains(err.Error(), "cannot use []string") {
		t.Fatalf("error %v, want the mapping error", err)
	}
	t.Logf("reported: %v", err)
}

var update = flag.Bool("update", false, "rewrite connectors/DEFAULTS.md")

// TestMappingDefaultsDoc keeps connectors/DEFAULTS.md, the flavours' default mappings, in step
// with the code (go generate ./cmd/scimbridge rewrites it).
func TestMappingDefaultsDoc(t *testing.T) {
	path := filepath.Join("..", "..", "connectors", "DEFAULTS.md")
	got := flavourDefaultsMarkdown()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s is out of date: run go generate ./cmd/scimbridge", path)
	}
	for _, f := range flavours() {
		if !strings.Contains(got, "## "+f.flavour.Name+"\n") {
			t.Errorf("the defaults lack flavour %s", f.flavour.Name)
		}
	}
}

func TestMappingDefaultsCommand(t *testing.T) {
	run := func(args ...string) (string, error) {
		cmd := newMappingCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"defaults"}, args...))
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("--flavour", "active_directory")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"active_directory (source.type: ldap, source.ldap.flavour: active_directory;",
		"| user | `userName` | `default(attr(\"userPrincipalName\"), attr(\"sAMAccountName\"))` |\n",
		"| user | `email` | `attr(\"mail\")` |\n",
		"| group | `displayName` | `default(attr(\"name\"), attr(\"cn\"))` |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := run("--flavour", "novell"); err == nil || !strings.Contains(err.Error(), "use one of active_directory, openldap, generic, google, file") {
		t.Errorf("unknown flavour: error %v", err)
	}
}

// TestMappingTestShowsMappingAndWarnings: mapping test lists the mapping in effect (the
// configuration's targets marked) and warns about an attribute no entry holds.
func TestMappingTestShowsMappingAndWarnings(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", "directory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "directory.yaml", string(b))
	cfg := writeFile(t, dir, "c.yaml", "source:\n  type: file\n  file:\n    path: directory.yaml\nmapping:\n  user:\n    email: lower(attr(\"emial\"))\n")
	out, err := runMapping(t, "--config", cfg, "--id", "u-1001")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  mapping (file flavour; * = from the configuration):\n",
		"    userName           attr(\"userName\")\n",
		"   *email              lower(attr(\"emial\"))\n",
		"  warning (all entries read): 15 of 15 users synced have no email (mapping.user.email (line 7); first: u-1001, u-1002, u-1003, u-1004, u-1005)\n",
		"  warning (all entries read): mapping.user.email (line 7): attribute \"emial\" is on none of the 15 user entries read (did you mean \"email\"?)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "   displayName        default(attr(\"name\"), id)") {
		t.Errorf("a user's explanation lists the group mapping:\n%s", out)
	}
}
