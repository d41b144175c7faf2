package deploy_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// TestTerraformModule parses every .tf file of deploy/aws with HCL (Terraform's own parser),
// checks that it is formatted as `terraform fmt` leaves it (hclwrite.Format is the formatter
// terraform fmt runs), that every variable is declared with a type and a description and used,
// that every var.X used is declared, and that the IAM policy keeps to read actions on identitystore.
// Terraform itself is not installable here, so `terraform validate` is not run.
func TestTerraformModule(t *testing.T) {
	files, err := filepath.Glob("aws/*.tf")
	if err != nil || len(files) < 4 {
		t.Fatalf("deploy/aws: got %v (%v), want main, variables, outputs and versions .tf files", files, err)
	}
	p := hclparse.NewParser()
	declared := map[string]bool{}
	used := map[string]bool{}
	blocks := map[string]int{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if formatted := hclwrite.Format(src); !bytes.Equal(formatted, src) {
			t.Errorf("%s is not terraform fmt clean; formatted it reads:\n%s", f, formatted)
		}
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags.Error())
		}
		body := file.Body.(*hclsyntax.Body)
		for _, b := range body.Blocks {
			blocks[b.Type]++
			if b.Type == "variable" {
				declared[b.Labels[0]] = true
				for _, attr := range []string{"type", "description"} {
					if _, ok := b.Body.Attributes[attr]; !ok {
						t.Errorf("%s: variable %q has no %s", f, b.Labels[0], attr)
					}
				}
			}
			if b.Type == "output" {
				if _, ok := b.Body.Attributes["description"]; !ok {
					t.Errorf("%s: output %q has no description", f, b.Labels[0])
				}
			}
		}
		_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if e, ok := n.(hclsyntax.Expression); ok {
				for _, tr := range e.Variables() {
					if tr.RootName() == "var" && len(tr) > 1 {
						if a, ok := tr[1].(hcl.TraverseAttr); ok {
							used[a.Name] = true
						}
					}
				}
			}
			return nil
		})
	}
	for v := range used {
		if !declared[v] {
			t.Errorf("var.%s is used but not declared", v)
		}
	}
	for v := range declared {
		if !used[v] {
			t.Errorf("variable %q is declared but never used", v)
		}
	}
	if blocks["terraform"] != 1 || blocks["resource"] < 10 || blocks["output"] == 0 {
		t.Errorf("blocks %v", blocks)
	}

	// Least privilege: identitystore only reads, secrets only GetSecretValue, no wildcard action.
	iam, err := os.ReadFile("aws/iam.tf")
	if err != nil {
		t.Fatal(err)
	}
	var actionLines []string // condition keys (variable = "identitystore:IdentityStoreId") are not actions
	for _, l := range strings.Split(string(iam), "\n") {
		if !strings.Contains(l, "variable") {
			actionLines = append(actionLines, l)
		}
	}
	actions := regexp.MustCompile(`"([a-z0-9-]+:[A-Za-z*]+)"`).FindAllStringSubmatch(strings.Join(actionLines, "\n"), -1)
	read := regexp.MustCompile(`^identitystore:(List|Describe|Get|IsMemberInGroups)`)
	orgRead := regexp.MustCompile(`^organizations:(List|Describe)`)
	var seen []string
	for _, m := range actions {
		a := m[1]
		seen = append(seen, a)
		switch service, _, _ := strings.Cut(a, ":"); {
		case strings.Contains(a, "*"):
			t.Errorf("wildcard action %s", a)
		case service == "identitystore" && !read.MatchString(a):
			t.Errorf("identitystore action %s is not a read", a)
		case service == "secretsmanager" && a != "secretsmanager:GetSecretValue":
			t.Errorf("secretsmanager action %s", a)
		case service == "organizations" && !orgRead.MatchString(a):
			t.Errorf("organizations action %s is not a read", a)
		}
	}
	// Access: reads always, writes only in the statements that manage_access turns on.
	for _, sid := range []string{"ManageAccess", "ProvisionAccessInThisAccount"} {
		i := strings.Index(string(iam), `sid = "`+sid+`"`)
		if i < 0 || !strings.Contains(string(iam)[max(0, i-120):i], "for_each = var.manage_access ? [1] : []") {
			t.Errorf("statement %s is missing or not conditional on var.manage_access", sid)
		}
	}
	if i := strings.Index(string(iam), `sid = "ReadAccess"`); i < 0 {
		t.Error("no ReadAccess statement")
	} else if block := string(iam)[i : strings.Index(string(iam)[i:], "}")+i]; !regexp.MustCompile(`"sso:(List|Describe|Get)`).MatchString(block) ||
		regexp.MustCompile(`"sso:(Create|Delete|Update|Put|Attach|Detach|Provision|Tag|Untag)`).MatchString(block) {
		t.Errorf("ReadAccess must hold sso reads only:\n%s", block)
	}
	for _, want := range []string{"identitystore:ListUsers", "identitystore:ListGroupMemberships", "secretsmanager:GetSecretValue", "logs:PutLogEvents", "ecs:RunTask",
		"sso:ListInstances", "sso:ListAccountAssignmentsForPrincipal", "organizations:ListAccountsForParent", "sso:CreateAccountAssignment", "sso:ProvisionPermissionSet"} {
		if !slices.Contains(seen, want) {
			t.Errorf("iam.tf does not grant %s", want)
		}
	}
	if !strings.Contains(string(iam), `identitystore/${var.identity_store_id}`) || !strings.Contains(string(iam), `"identitystore:IdentityStoreId"`) {
		t.Error("identitystore reads must be limited to the one store")
	}

	// The README documents every variable.
	readme, err := os.ReadFile("aws/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for v := range declared {
		if !strings.Contains(string(readme), "| `"+v+"` |") {
			t.Errorf("aws/README.md does not list the variable %s", v)
		}
	}
}
