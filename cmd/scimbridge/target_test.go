package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

// awsEnv is an environment with no AWS setting of the test machine's own: every AWS variable
// is dropped, HOME is dir, and the instance metadata service is off.
func awsEnv(dir string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+dir, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "no-aws-credentials"))
	return append(env, extra...)
}

// TestAWSConfigurationChain: the identitystore reader takes its region, credentials and endpoint
// from the AWS environment the way the AWS CLI does (AWS_ENDPOINT_URL_IDENTITYSTORE,
// AWS_ENDPOINT_URL, AWS_PROFILE with the shared config and credentials files), and
// target.identitystore_endpoint / target.region still win over it.
func TestAWSConfigurationChain(t *testing.T) {
	srv := emulatortest.Start(t, emulator.Options{})
	refused := "http://127.0.0.1:1" // nothing listens there: a reader that goes there fails
	for _, tc := range []struct {
		name   string
		target string                    // extra target keys
		env    func(dir string) []string // beyond awsEnv
		files  map[string]string
	}{
		{name: "AWS_ENDPOINT_URL_IDENTITYSTORE", env: func(string) []string {
			return []string{"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=AKIDCHAIN", "AWS_SECRET_ACCESS_KEY=chain-secret",
				"AWS_ENDPOINT_URL=" + refused, "AWS_ENDPOINT_URL_IDENTITYSTORE=" + srv.IdentityStoreEndpoint}
		}},
		{name: "AWS_ENDPOINT_URL", env: func(string) []string {
			return []string{"AWS_DEFAULT_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=AKIDCHAIN", "AWS_SECRET_ACCESS_KEY=chain-secret",
				"AWS_ENDPOINT_URL=" + srv.IdentityStoreEndpoint}
		}},
		{name: "AWS_PROFILE and shared files", env: func(dir string) []string {
			return []string{"AWS_PROFILE=bridge", "AWS_CONFIG_FILE=" + filepath.Join(dir, "aws-config"),
				"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "aws-credentials")}
		}, files: map[string]string{
			"aws-config":      "[default]\nregion = us-west-2\nendpoint_url = " + refused + "\n\n[profile bridge]\nregion = eu-central-1\nendpoint_url = " + srv.IdentityStoreEndpoint + "\n",
			"aws-credentials": "[bridge]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n",
		}},
		{name: "target keys override the environment", target: "  region: us-east-1\n  identitystore_endpoint: " + srv.IdentityStoreEndpoint + "\n",
			env: func(string) []string {
				return []string{"AWS_ACCESS_KEY_ID=AKIDCHAIN", "AWS_SECRET_ACCESS_KEY=chain-secret", "AWS_ENDPOINT_URL=" + refused,
					"AWS_ENDPOINT_URL_IDENTITYSTORE=" + refused}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			writeDirectory(t, dir)
			cfg := fmt.Sprintf("source: {type: file, file: {path: directory.yaml}}\ntarget:\n  scim_url: %s\n  token: ${SCIM_TOKEN}\n  identity_store_id: %s\n%sstate: {path: state.db}\nlog: {level: warn}\n",
				srv.URL, srv.StoreID, tc.target)
			if err := os.WriteFile(filepath.Join(dir, "scimbridge.yaml"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			srv.Emu.ResetStats()
			env := append(awsEnv(dir, tc.env(dir)...), "SCIM_TOKEN="+srv.Token)
			stdout, stderr, code := runEnv(t, dir, env, "sync", "-c", "scimbridge.yaml", "--full", "--dry-run")
			if code != 0 && code != 2 {
				t.Fatalf("sync exit code %d\nstdout: %s\nstderr: %s", code, tail(stdout), tail(stderr))
			}
			st := srv.Emu.Stats()
			if st["identitystore.ListUsers"] == 0 || st["scim.ListUsers"] != 0 {
				t.Errorf("got identitystore.ListUsers %d and scim.ListUsers %d, want the read through identitystore (stats %v)",
					st["identitystore.ListUsers"], st["scim.ListUsers"], st)
			}
		})
	}
}

// writeDirectory writes a two-user directory.yaml into dir.
func writeDirectory(t *testing.T, dir string) {
	t.Helper()
	d := "users:\n  - {id: u1, userName: ann@example.com, givenName: Ann, familyName: A, email: ann@example.com}\n" +
		"  - {id: u2, userName: bob@example.com, givenName: Bob, familyName: B, email: bob@example.com}\n" +
		"groups:\n  - {id: g1, name: Team, members: [u1, u2]}\n"
	if err := os.WriteFile(filepath.Join(dir, "directory.yaml"), []byte(d), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTargetErrorsFailFastAndOnce: a wrong token names target.token; a SCIM URL where nothing
// listens fails in about a second (one retry, not eight) naming target.scim_url; and the run's
// error is printed once in the summary, not again as a last line.
func TestTargetErrorsFailFastAndOnce(t *testing.T) {
	srv := emulatortest.Start(t, emulator.Options{})
	for _, tc := range []struct {
		name, url, token, want string
		requests               string
	}{
		{name: "wrong token", url: srv.URL, token: "not-the-token", want: "check target.token (", requests: "scim.ListUsers 1"},
		{name: "nothing listens", url: "http://127.0.0.1:1/scim/v2", token: "tok", want: "check target.scim_url", requests: "scim.ListUsers 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDirectory(t, dir)
			cfg := fmt.Sprintf("source: {type: file, file: {path: directory.yaml}}\ntarget:\n  scim_url: %s\n  token: ${SCIM_TOKEN}\nstate: {path: state.db}\nlog: {level: warn}\n", tc.url)
			if err := os.WriteFile(filepath.Join(dir, "scimbridge.yaml"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			stdout, stderr, code := runEnv(t, dir, append(awsEnv(dir), "SCIM_TOKEN="+tc.token), "sync", "-c", "scimbridge.yaml")
			took := time.Since(start)
			if code != 1 {
				t.Fatalf("got exit code %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			if n := strings.Count(stdout, tc.want); n != 1 {
				t.Errorf("got %d mentions of %s in the summary, want 1\nstdout: %s", n, tc.want, stdout)
			}
			if strings.Contains(stderr, "scimbridge: ") {
				t.Errorf("got the error again as a last line on stderr:\n%s", stderr)
			}
			if !strings.Contains(stdout, "Requests: "+tc.requests+"\n") {
				t.Errorf("got %s, want the requests %q", stdout, tc.requests)
			}
			if strings.Contains(stdout+stderr, tc.token) && tc.token != "tok" {
				t.Errorf("the token shows in the output")
			}
			if took > 5*time.Second {
				t.Errorf("took %v, want a fast failure", took)
			}
		})
	}
}

// TestGenericProfileEndToEnd syncs into a server that applies RFC 7644 literally, pages by 7 and
// leaves members out of its group listings: members leave a group through members[value eq]
// removals and the others stay, a full read sees the real members (no plan to re-add them all),
// and a full read after that plans nothing.
func TestGenericProfileEndToEnd(t *testing.T) {
	srv := emulatortest.Start(t, emulator.Options{StrictRFC: true, MaxResults: 7})
	dir := t.TempDir()
	people := func(members int) {
		var b strings.Builder
		b.WriteString("users:\n")
		var ids []string
		for i := range 12 {
			fmt.Fprintf(&b, "  - {id: u%02d, userName: u%02d@example.com, givenName: U, familyName: N%02d, email: u%02d@example.com}\n", i, i, i, i)
			if i < members {
				ids = append(ids, fmt.Sprintf("u%02d", i))
			}
		}
		fmt.Fprintf(&b, "groups:\n  - {id: g1, name: Team, members: [%s]}\n", strings.Join(ids, ", "))
		if err := os.WriteFile(filepath.Join(dir, "directory.yaml"), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf("source: {type: file, file: {path: directory.yaml}}\ntarget:\n  scim_url: %s\n  token: ${SCIM_TOKEN}\n  profile: generic\nstate: {path: state.db}\nlog: {level: warn}\n", srv.URL)
	if err := os.WriteFile(filepath.Join(dir, "scimbridge.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(awsEnv(dir), "SCIM_TOKEN="+srv.Token)
	sync := func(args ...string) (string, int) {
		t.Helper()
		stdout, stderr, code := runEnv(t, dir, env, append([]string{"sync", "-c", "scimbridge.yaml"}, args...)...)
		return stdout + stderr, code
	}
	members := func() int {
		t.Helper()
		d, err := srv.Emu.Dump()
		if err != nil {
			t.Fatal(err)
		}
		return len(d.Memberships)
	}
	people(12)
	if out, code := sync(); code != 0 || members() != 12 {
		t.Fatalf("initial sync: exit %d, %d members, want 0 and 12\n%s", code, members(), tail(out))
	}
	people(9)
	if out, code := sync("--full"); code != 0 || members() != 9 {
		t.Fatalf("3 members leave: exit %d, got %d members, want 0 and 9\n%s", code, members(), tail(out))
	}
	if out, code := sync("--full", "--dry-run"); code != 0 {
		t.Errorf("a full read after that: exit %d, want 0 (nothing to do)\n%s", code, tail(out))
	}
}
