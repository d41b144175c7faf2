package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

// TestCheckReachesAccess: with an access section, check makes the reads a sync's access phase
// starts with and reports what it found: against the embedded Identity Center after a sync, its
// instance, 12 accounts and the 2 permission sets; against AWS-style endpoints where the role may
// not DescribeOrganization, the AccessDenied naming the action (exit 1), the sso-admin reads still
// reported. It sends only reads, and without an access section no access call at all.
func TestCheckReachesAccess(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		dir := quickstart(t)
		env := append(envWithout("TMPDIR"), "TMPDIR="+t.TempDir())
		out, errOut, code := runEnv(t, dir, env, "check", "-c", "scimbridge.yaml")
		if code != 0 || !strings.Contains(out, "access: not checked until the first sync creates the embedded Identity Center") {
			t.Fatalf("check before the first sync: exit %d\n%s\n%s", code, out, errOut)
		}
		if _, errOut, code := runEnv(t, dir, env, "sync", "-c", "scimbridge.yaml"); code != 0 {
			t.Fatalf("sync: exit %d\n%s", code, errOut)
		}
		out, errOut, code = runEnv(t, dir, env, "check", "-c", "scimbridge.yaml")
		for _, want := range []string{"  access sso-admin: instance arn:aws:sso:::instance/", "access permission sets: 2 in the instance, 2 defined in the config",
			"access organizations: 12 accounts, ", "everything reachable"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("check after a sync: exit %d, no %q\n%s\n%s", code, want, out, errOut)
			}
		}
	})

	srv := emulatortest.Start(t, emulator.Options{})
	// AWS's answer to a role without organizations:DescribeOrganization, in front of the emulator.
	var mu sync.Mutex
	var ops []string
	target, _ := url.Parse(srv.StatsURL)
	target.Path = ""
	proxy := httputil.NewSingleHostReverseProxy(target)
	deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
		if strings.HasSuffix(op, ".DescribeOrganization") {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"AccessDeniedException","Message":"You don't have permissions to access this resource."}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(deny.Close)
	ssoURL, _ := url.Parse(srv.SSOAdminEndpoint)
	orgURL, _ := url.Parse(srv.OrganizationsEndpoint)
	accessSection := "access:\n  permission_sets:\n    - {name: ReadOnly, managed_policies: [arn:aws:iam::aws:policy/ReadOnlyAccess]}\n" +
		"  assignments:\n    - {groups: [Team], permission_sets: [ReadOnly], accounts: all}\n"
	for _, tc := range []struct {
		name, access string
		wantCode     int
		want         []string
	}{
		{name: "access denied", access: accessSection, wantCode: 1, want: []string{"  access sso-admin: instance arn:aws:sso:::instance/",
			"access permission sets: 0 in the instance, 1 defined in the config", "  access organizations: FAILED: ", "DescribeOrganization", "AccessDeniedException"}},
		{name: "no access section", wantCode: 0, want: []string{"SCIM: reachable", "everything reachable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDirectory(t, dir)
			cfg := fmt.Sprintf("source: {type: file, file: {path: directory.yaml}}\ntarget:\n  scim_url: %s\n  token: ${SCIM_TOKEN}\n  region: us-east-1\n%sstate: {path: state.db}\nlog: {level: warn}\n",
				srv.URL, tc.access)
			if err := os.WriteFile(filepath.Join(dir, "scimbridge.yaml"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			ops = nil
			mu.Unlock()
			env := awsEnv(dir, "SCIM_TOKEN="+srv.Token, "AWS_ACCESS_KEY_ID=AKIDCHECK", "AWS_SECRET_ACCESS_KEY=check-secret",
				"AWS_ENDPOINT_URL_SSO_ADMIN="+deny.URL+ssoURL.Path, "AWS_ENDPOINT_URL_ORGANIZATIONS="+deny.URL+orgURL.Path)
			out, errOut, code := runEnv(t, dir, env, "check", "-c", "scimbridge.yaml")
			if code != tc.wantCode {
				t.Errorf("check: exit %d, want %d", code, tc.wantCode)
			}
			for _, want := range tc.want {
				if !strings.Contains(out+errOut, want) {
					t.Errorf("check lacks %q", want)
				}
			}
			if strings.Contains(out+errOut, "check-secret") {
				t.Error("check printed the AWS secret key")
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.access == "" && len(ops) > 0 {
				t.Errorf("without an access section check sent %q", ops)
			}
			for _, op := range ops {
				name := op[strings.LastIndex(op, ".")+1:]
				if !strings.HasPrefix(name, "List") && !strings.HasPrefix(name, "Describe") && !strings.HasPrefix(name, "Get") {
					t.Errorf("check sent %s, want only reads", op)
				}
			}
			if tc.access != "" && !slices.ContainsFunc(ops, func(op string) bool { return strings.HasSuffix(op, ".ListInstances") }) {
				t.Errorf("check sent %q, want ListInstances among them", ops)
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			}
		})
	}
}
