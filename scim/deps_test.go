package scim_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// leafPackages must not depend on the AWS SDK: the model, the pure plan, the access rules and plan
// (whose sso-admin and organizations reads and writes live in scim/access/awsaccess), the state store, the
// connectors' shared code, the secret resolver and the directory sources. The SCIM client and the
// identitystore reader live in scim/client, and the readers of aws-secretsmanager:// and aws-ssm://
// references in connectors/secret/awssecret (which the binary wires into its resolver), so that
// none of these carries 60-110 AWS and smithy packages.
var leafPackages = []string{
	"github.com/scimbridge/scimbridge/scim",
	"github.com/scimbridge/scimbridge/scim/plan",
	"github.com/scimbridge/scimbridge/scim/access",
	"github.com/scimbridge/scimbridge/scim/state",
	"github.com/scimbridge/scimbridge/connectors",
	"github.com/scimbridge/scimbridge/connectors/file",
	"github.com/scimbridge/scimbridge/connectors/conformance",
	"github.com/scimbridge/scimbridge/connectors/secret",
	"github.com/scimbridge/scimbridge/connectors/ldap",
	"github.com/scimbridge/scimbridge/connectors/google",
}

// awsDeps returns the github.com/aws/ packages that pkg depends on, as `go list -deps` says.
func awsDeps(t *testing.T, pkg string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list dependencies with: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", pkg).Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	var aws []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/aws/") {
			aws = append(aws, p)
		}
	}
	return aws
}

func TestLeafPackagesDoNotDependOnAWS(t *testing.T) {
	// The check itself must see the SDK where it is: the identitystore reader and the AWS secret
	// backends use it.
	if got := awsDeps(t, "github.com/scimbridge/scimbridge/scim/client"); len(got) == 0 {
		t.Fatalf("go list -deps scim/client: got no github.com/aws/ package, want the identitystore SDK")
	}
	if got := awsDeps(t, "github.com/scimbridge/scimbridge/connectors/secret/awssecret"); len(got) == 0 {
		t.Fatalf("go list -deps connectors/secret/awssecret: got no github.com/aws/ package, want the Secrets Manager and SSM SDKs")
	}
	for _, pkg := range leafPackages {
		if got := awsDeps(t, pkg); len(got) > 0 {
			t.Errorf("%s depends on %d AWS packages, want none; first: %s", pkg, len(got), got[0])
		}
	}
}
