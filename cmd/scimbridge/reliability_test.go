package main

// The binary under failing sources, guards, hostile input and secret scanning (issue 9). Each test
// runs `scimbridge sync` against an emulator in this process and checks the exit code, the output
// and the exact target state.

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/state"
)

// rig is a target with unmanaged objects (a break-glass user in a Control Tower group), a
// directory file and a config for the binary.
type rig struct {
	t      *testing.T
	dir    string
	srv    *emulatortest.Server
	cfg    string
	env    []string
	manual emulator.Dump
}

func newRig(t *testing.T, extraConfig string) *rig {
	t.Helper()
	b := &rig{t: t, dir: t.TempDir(), srv: emulatortest.Start(t, emulator.Options{})}
	b.env = childEnv(b.dir, b.srv.Token)
	b.manual = addUnmanaged(t, b.srv)
	b.cfg = targetConfig(t, b.dir, b.srv, extraConfig)
	return b
}

// people writes a directory of n users (departments alternate: 3 of 5 in Engineering) and two groups.
func (b *rig) people(n int, edit func(i int, line string) string) {
	b.t.Helper()
	var s strings.Builder
	s.WriteString("users:\n")
	var all []string
	for i := range n {
		dept := "Engineering"
		if i%5 >= 3 {
			dept = "Sales"
		}
		line := fmt.Sprintf("  - {id: p-%03d, userName: p%03d@example.com, givenName: P, familyName: N%03d, email: p%03d@example.com, department: %s}\n", i, i, i, i, dept)
		if edit != nil {
			line = edit(i, line)
		}
		s.WriteString(line)
		all = append(all, fmt.Sprintf("p-%03d", i))
	}
	fmt.Fprintf(&s, "groups:\n  - {id: g-all, name: All, members: [%s]}\n  - {id: g-first, name: First, members: [p-000]}\n", strings.Join(all, ", "))
	b.write("directory.yaml", s.String())
}

func (b *rig) write(name, content string) {
	b.t.Helper()
	if err := os.WriteFile(filepath.Join(b.dir, name), []byte(content), 0o600); err != nil {
		b.t.Fatal(err)
	}
}

func (b *rig) sync(args ...string) (string, string, int) {
	b.t.Helper()
	return runEnv(b.t, b.dir, b.env, append([]string{"sync", "-c", b.cfg}, args...)...)
}

func (b *rig) dump() emulator.Dump {
	b.t.Helper()
	d, err := b.srv.Emu.Dump()
	if err != nil {
		b.t.Fatal(err)
	}
	checkNoDuplicates(b.t, d)
	return d
}

// checkUnmanaged fails when the break-glass user or the Control Tower group changed in any way.
func (b *rig) checkUnmanaged() {
	b.t.Helper()
	checkUnmanaged(b.t, b.manual, b.dump())
}

// addUnmanaged makes, through the identitystore API as an administrator or Control Tower would, a
// break-glass user in an AWSControlTowerAdmins group, and returns the target as it then is.
func addUnmanaged(t *testing.T, srv *emulatortest.Server) emulator.Dump {
	t.Helper()
	ctx := context.Background()
	is := identitystore.New(identitystore.Options{BaseEndpoint: aws.String(srv.IdentityStoreEndpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	store := aws.String(srv.StoreID)
	u, err := is.CreateUser(ctx, &identitystore.CreateUserInput{IdentityStoreId: store, UserName: aws.String("break-glass"),
		DisplayName: aws.String("Break Glass"), Name: &istypes.Name{GivenName: aws.String("Break"), FamilyName: aws.String("Glass")}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := is.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: store, DisplayName: aws.String("AWSControlTowerAdmins")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{IdentityStoreId: store, GroupId: g.GroupId,
		MemberId: &istypes.MemberIdMemberUserId{Value: *u.UserId}}); err != nil {
		t.Fatal(err)
	}
	d, err := srv.Emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkUnmanaged fails when an object of manual changed in d in any way.
func checkUnmanaged(t *testing.T, manual, d emulator.Dump) {
	t.Helper()
	for _, m := range manual.Users {
		if i := slices.IndexFunc(d.Users, func(u emulator.DumpUser) bool { return u.ID == m.ID }); i < 0 || d.Users[i] != m {
			t.Errorf("unmanaged user %s was touched", m.UserName)
		}
	}
	for _, m := range manual.Groups {
		if i := slices.IndexFunc(d.Groups, func(g emulator.DumpGroup) bool { return g.ID == m.ID }); i < 0 || !slices.Equal(d.Groups[i].Members, m.Members) || d.Groups[i].DisplayName != m.DisplayName {
			t.Errorf("unmanaged group %s was touched", m.DisplayName)
		}
	}
}

// userNames lists the managed users' userNames, sorted.
func (b *rig) userNames() []string {
	var out []string
	for _, u := range b.dump().Users {
		if u.CreatedBy == "scim" {
			out = append(out, u.UserName)
		}
	}
	slices.Sort(out)
	return out
}

func (b *rig) lastRun() state.Run {
	b.t.Helper()
	st, err := state.Open(context.Background(), filepath.Join(b.dir, "state.db"))
	if err != nil {
		b.t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs(context.Background(), 1)
	if err != nil || len(runs) == 0 {
		b.t.Fatal(runs, err)
	}
	return runs[0]
}

func TestFileSourceFaults(t *testing.T) {
	b := newRig(t, "")
	b.people(30, nil)
	if _, errOut, code := b.sync(); code != exitOK {
		t.Fatalf("initial sync: exit %d\n%s", code, errOut)
	}
	good, _ := os.ReadFile(filepath.Join(b.dir, "directory.yaml"))
	before := b.userNames()
	cases := []struct {
		name    string
		arm     func()
		wantErr string
	}{
		{"unreadable file", func() {
			os.Remove(filepath.Join(b.dir, "directory.yaml"))
			os.Mkdir(filepath.Join(b.dir, "directory.yaml"), 0o700) // exists, cannot be read as a file, even by root
		}, "directory.yaml"},
		{"truncated file", func() { b.write("directory.yaml", string(good[:len(good)/2])) }, "directory.yaml"},
		{"invalid YAML", func() { b.write("directory.yaml", "users:\n  - id: [unclosed\n\tgroups: {\n") }, "directory.yaml"},
		{"wrong shape", func() { b.write("directory.yaml", "users: {alice: 1}\ngroups: 7\n") }, "directory.yaml"},
		{"empty file", func() { b.write("directory.yaml", "") }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(filepath.Join(b.dir, "directory.yaml"))
			tc.arm()
			b.srv.Emu.ResetStats()
			out, errOut, code := b.sync()
			if code == exitOK || code == exitChanges {
				t.Fatalf("exit %d for a broken source\n%s\n%s", code, out, errOut)
			}
			if tc.wantErr != "" && !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("the error does not name the file:\n%s", errOut)
			}
			if w := writeCount(b.srv.Emu.Stats()); w != 0 {
				t.Errorf("%d writes reached the target", w)
			}
			if got := b.userNames(); !slices.Equal(got, before) {
				t.Errorf("users changed: %d -> %d", len(before), len(got))
			}
			if r := b.lastRun(); r.Result == state.ResultSuccess || len(r.Errors) == 0 {
				t.Errorf("run recorded as %q, errors %q", r.Result, r.Errors)
			}
		})
	}
	os.RemoveAll(filepath.Join(b.dir, "directory.yaml"))
	b.write("directory.yaml", string(good))
	if out, errOut, code := b.sync("--full"); code != exitOK || !strings.Contains(out, "No changes") {
		t.Fatalf("after the source recovered: exit %d\n%s\n%s", code, out, errOut)
	}
	b.checkUnmanaged()
}

func TestGuardsThroughConfig(t *testing.T) {
	b := newRig(t, "")
	b.people(20, nil)
	if _, errOut, code := b.sync(); code != exitOK {
		t.Fatalf("initial sync: exit %d\n%s", code, errOut)
	}
	all := b.userNames()
	if len(all) != 20 {
		t.Fatalf("synced %d users", len(all))
	}

	// A scope filter mistake keeps only Engineering: 8 of 20 users (40%) would go. Blocked.
	scoped := targetConfig(t, b.dir, b.srv, "scope:\n  users:\n    include: attr(\"department\") == \"Engineering\"\n")
	b.srv.Emu.ResetStats()
	out, errOut, code := runEnv(t, b.dir, b.env, "sync", "-c", scoped)
	if code != exitBlocked || !strings.Contains(errOut, "blocked by a safety guard") {
		t.Fatalf("a 40%% shrink was not blocked: exit %d\n%s\n%s", code, out, errOut)
	}
	if w := writeCount(b.srv.Emu.Stats()); w != 0 || !slices.Equal(b.userNames(), all) {
		t.Fatalf("a blocked run wrote %d requests", w)
	}
	if r := b.lastRun(); r.Result != state.ResultBlocked {
		t.Errorf("run recorded as %q", r.Result)
	}

	// Upsert-only never deletes, even with the deletions allowed.
	upsert := targetConfig(t, b.dir, b.srv, "sync: {policy: upsert-only}\nscope:\n  users:\n    include: attr(\"department\") == \"Engineering\"\n")
	out, errOut, code = runEnv(t, b.dir, b.env, "sync", "-c", upsert, "--allow-deletes", "100")
	if code != exitOK || !slices.Equal(b.userNames(), all) {
		t.Fatalf("upsert-only: exit %d, %d users\n%s\n%s", code, len(b.userNames()), out, errOut)
	}

	// A person allows the deletion: exactly the 8 Sales users go, nothing else.
	out, errOut, code = runEnv(t, b.dir, b.env, "sync", "-c", scoped, "--allow-deletes", "8")
	if code != exitOK || !strings.Contains(out, "8 deleted") {
		t.Fatalf("allowed deletion: exit %d\n%s\n%s", code, out, errOut)
	}
	var want []string
	for i := range 20 {
		if i%5 < 3 {
			want = append(want, fmt.Sprintf("p%03d@example.com", i))
		}
	}
	if got := b.userNames(); !slices.Equal(got, want) {
		t.Errorf("after the allowed deletion: %v, want %v", got, want)
	}
	// The group lost exactly the deleted members.
	for _, g := range b.dump().Groups {
		if g.DisplayName == "All" && len(g.Members) != 12 {
			t.Errorf("group All has %d members, want 12", len(g.Members))
		}
	}
	b.checkUnmanaged()
}

// hostileCorpus is testdata/hostile/directory.yaml plus a group of 20,000 members (generated, to
// keep the file small): 300 real users and 19,700 references to nobody.
func hostileCorpus(t *testing.T, b *rig) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "hostile", "directory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	corpus := string(raw)
	var users, members strings.Builder
	for i := range 300 {
		fmt.Fprintf(&users, "  - {id: bulk-%03d, userName: bulk%03d@example.com, givenName: Bulk, familyName: N%03d}\n", i, i, i)
	}
	for i := range 20000 {
		if i < 300 {
			fmt.Fprintf(&members, "bulk-%03d, ", i)
		} else {
			fmt.Fprintf(&members, "nobody-%05d, ", i)
		}
	}
	corpus = strings.Replace(corpus, "users:\n", "users:\n"+users.String(), 1)
	corpus = strings.Replace(corpus, "groups:\n", "groups:\n  - {id: g-20000, name: Twenty Thousand, members: ["+strings.TrimSuffix(members.String(), ", ")+"]}\n", 1)
	b.write("directory.yaml", corpus)
}

func TestHostileDirectoryFile(t *testing.T) {
	b := newRig(t, "")
	hostileCorpus(t, b)
	out, errOut, code := b.sync("--output", "json")
	if code != exitOK {
		t.Fatalf("the hostile corpus stopped the sync: exit %d\n%s\n%s", code, tail(out), errOut)
	}
	// Each bad record is reported by id, on stderr's log lines.
	for _, id := range []string{"h-no-family", "h-no-given", "h-long", "h-control", "h-bell", "h-space", "h-bad-email", "g-empty-name"} {
		if !strings.Contains(errOut, "id="+id) {
			t.Errorf("bad record %s not reported", id)
		}
	}
	d := b.dump()
	byName := map[string]emulator.DumpUser{}
	for _, u := range d.Users {
		byName[u.UserName] = u
	}
	// The good and the odd-but-valid records are there, values intact.
	for _, want := range []struct{ userName, given string }{
		{"ok@example.com", "Ok"},
		{`quote"d@example.com`, `Quo"te`},
		{`back\slash@example.com`, `Back\slash`},
		{`paren)star*@example.com`, `Paren)`},
		{`x"or"userName"pr"`, `x" or userName pr "`},
		{"ünïcödé@example.com", "Zoë"},
	} {
		u, ok := byName[want.userName]
		if !ok || u.GivenName != want.given {
			t.Errorf("user %q: %+v (present %v)", want.userName, u, ok)
		}
	}
	for _, bad := range []string{"nofamily@example.com", "nogiven@example.com", "has space@example.com"} {
		if _, ok := byName[bad]; ok {
			t.Errorf("bad record %s was synced", bad)
		}
	}
	var managed int
	for _, u := range d.Users {
		if u.CreatedBy == "scim" {
			managed++
		}
	}
	if managed != 300+6 {
		t.Errorf("%d managed users, want 306", managed)
	}
	groups := map[string]int{}
	for _, g := range d.Groups {
		groups[g.DisplayName] = len(g.Members)
	}
	if groups["Twenty Thousand"] != 300 || groups["Cycle A"] != 2 || groups["Cycle B"] != 2 || groups[`Team "x" or displayName pr "`] != 1 {
		t.Errorf("groups: %v", groups)
	}
	// A filter built from a hostile value matches nobody else.
	if out, errOut, code := b.sync("--full"); code != exitOK || !strings.Contains(out, "No changes") {
		t.Errorf("second run is not a no-op: exit %d\n%s\n%s", code, tail(out), tail(errOut))
	}
	b.checkUnmanaged()
}

// Real-looking secrets: none of them may appear in any output of any run.
const (
	secretToken    = "AQoDYXdzEJr1K2rRm7Zq9vX3wTtL8yGhPp4sNcVb6Mf0Ej5UaHdWk" // a SCIM bearer token
	secretKeyPart  = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
	secretPassword = "Tr0ub4dor&3-correct-horse"
)

func scanForSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{secretToken, secretToken[:16], secretKeyPart, secretKeyPart[:20], secretPassword} {
		if strings.Contains(text, s) {
			t.Errorf("%s holds a secret (%q...):\n%s", what, s[:8], tail(text))
		}
	}
}

func TestNoSecretsInOutput(t *testing.T) {
	dir := t.TempDir()
	srv := emulatortest.Start(t, emulator.Options{Token: secretToken})
	env := childEnv(dir, secretToken)
	b := &rig{t: t, dir: dir, srv: srv, env: env}
	b.people(10, nil)
	cfg := targetConfig(t, dir, srv, "")
	// Every kind of run: success, no-op, dry run, JSON, debug logs, JSON logs, a blocked run,
	// a wrong token (401), check, and a failing source.
	runs := [][]string{
		{"sync", "-c", cfg, "-v"},
		{"sync", "-c", cfg, "--dry-run", "--output", "json", "-v"},
		{"sync", "-c", cfg, "--full", "-v"},
		{"check", "-c", cfg},
	}
	for _, args := range runs {
		out, errOut, code := runEnv(t, dir, env, args...)
		t.Logf("%v: exit %d", args, code)
		scanForSecrets(t, fmt.Sprint(args), out+errOut)
	}
	// JSON debug logs and a blocked run (the directory emptied).
	raw, _ := os.ReadFile(cfg)
	jsonCfg := filepath.Join(dir, "json.yaml")
	os.WriteFile(jsonCfg, []byte(strings.Replace(string(raw), "log: {level: warn}", "log: {level: debug, format: json}", 1)), 0o600)
	b.write("directory.yaml", "users: []\ngroups: []\n")
	out, errOut, code := runEnv(t, dir, env, "sync", "-c", jsonCfg)
	scanForSecrets(t, "blocked run", out+errOut)
	if code != exitBlocked {
		t.Errorf("blocked run: exit %d", code)
	}
	// A wrong token: the target's 401 is reported without the token that was sent (a new user
	// makes the run write through SCIM; reads go through identitystore).
	b.people(11, nil)
	wrong := append(childEnv(dir, secretToken+"-revoked"), "SCIM_TOKEN="+secretToken+"-revoked")
	out, errOut, code = runEnv(t, dir, wrong, "sync", "-c", cfg, "--full", "-v")
	if code == exitOK {
		t.Errorf("a wrong token synced:\n%s\n%s", out, errOut)
	}
	scanForSecrets(t, "401 run", out+errOut)

	// A Google source with a service account key and an unreachable API: the key never shows.
	key := `{"type":"service_account","client_email":"sync@example.iam.gserviceaccount.com","private_key_id":"0123456789abcdef","private_key":"-----BEGIN PRIVATE KEY-----\n` +
		secretKeyPart + `\n-----END PRIVATE KEY-----\n","token_uri":"http://127.0.0.1:1/token"}`
	os.WriteFile(filepath.Join(dir, "key.json"), []byte(key), 0o600)
	gcfg := filepath.Join(dir, "google.yaml")
	os.WriteFile(gcfg, []byte(fmt.Sprintf(`source:
  type: google
  google:
    customer: my_customer
    subject: admin@example.com
    service_account_key: ${GOOGLE_KEY}
    endpoint: http://127.0.0.1:1/
target:
  scim_url: %s
  token: ${SCIM_TOKEN}
state: {path: g-state.db}
`, srv.URL)), 0o600)
	genv := append(slices.Clone(env), "GOOGLE_KEY="+key)
	for _, args := range [][]string{{"sync", "-c", gcfg, "-v"}, {"check", "-c", gcfg}, {"sync", "-c", gcfg, "--output", "json"}} {
		out, errOut, code := runEnv(t, dir, genv, args...)
		if code == exitOK {
			t.Errorf("%v against an unreachable Google API succeeded", args)
		}
		scanForSecrets(t, fmt.Sprint(args), out+errOut)
	}
	// A config error that involves the secret fields.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(fmt.Sprintf("source: {type: file, file: {path: directory.yaml}}\ntarget: {scim_url: %s, token: %q, token_file: x, concurrency: -1}\n", srv.URL, secretToken)), 0o600)
	out, errOut, code = runEnv(t, dir, env, "sync", "-c", bad)
	if code != exitError {
		t.Errorf("bad config: exit %d", code)
	}
	scanForSecrets(t, "config error", out+errOut)
}

func TestTLSVerifiedByDefault(t *testing.T) {
	emu, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	ts := newTLSServer(t, emu)
	dir := t.TempDir()
	b := &rig{t: t, dir: dir, env: childEnv(dir, emu.Token())}
	b.people(3, nil)
	cfg := filepath.Join(dir, "tls.yaml")
	write := func(extra string) {
		os.WriteFile(cfg, []byte(fmt.Sprintf("source: {type: file, file: {path: directory.yaml}}\ntarget:\n  scim_url: %s%s\n  token: ${SCIM_TOKEN}\n%sstate: {path: state.db}\n",
			ts.URL, emu.SCIMPath(), extra)), 0o600)
	}
	write("")
	out, errOut, code := runEnv(t, dir, b.env, "sync", "-c", cfg)
	if code != exitError || !strings.Contains(out+errOut, "certificate") {
		t.Fatalf("a self-signed target was accepted: exit %d\n%s\n%s", code, out, errOut)
	}
	if d, _ := emu.Dump(); len(d.Users) != 0 {
		t.Fatalf("users were written to an unverified target")
	}
	// With the target's CA configured it syncs.
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	os.WriteFile(filepath.Join(dir, "ca.pem"), certPEM, 0o600)
	write("  ca_file: ca.pem\n")
	out, errOut, code = runEnv(t, dir, b.env, "sync", "-c", cfg)
	if code != exitOK {
		t.Fatalf("with ca_file: exit %d\n%s\n%s", code, out, errOut)
	}
	if d, _ := emu.Dump(); len(d.Users) != 3 {
		t.Errorf("with ca_file: %s", d.Counts())
	}
	// Plain http to a non-loopback address is refused by the config.
	os.WriteFile(cfg, []byte("source: {type: file, file: {path: directory.yaml}}\ntarget: {scim_url: http://scim.example.com/t/scim/v2, token: x}\n"), 0o600)
	if _, errOut, code := runEnv(t, dir, b.env, "sync", "-c", cfg); code != exitError || !strings.Contains(errOut, "https") {
		t.Errorf("plain http to a remote target: exit %d\n%s", code, errOut)
	}
}

// newTLSServer serves emu over TLS with httptest's self-signed certificate.
func newTLSServer(t *testing.T, emu *emulator.Emulator) *httptest.Server {
	t.Helper()
	ts := httptest.NewTLSServer(emu.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// TestNoSecretsOnStatusPage runs `scimbridge serve` with every service secret set and scans the
// status page, /metrics, /readyz and the logs after a sync for them.
func TestNoSecretsOnStatusPage(t *testing.T) {
	dir := t.TempDir()
	srv := emulatortest.Start(t, emulator.Options{Token: secretToken})
	b := &rig{t: t, dir: dir, srv: srv, env: childEnv(dir, secretToken)}
	b.people(5, nil)
	cfg := targetConfig(t, dir, srv, fmt.Sprintf("service:\n  listen: 127.0.0.1:0\n  webhook_secret: %q\n  bearer_token: %q\n  ui_password: %q\n",
		secretPassword+"-hmac", secretKeyPart[:40], secretPassword))
	cmd := exec.Command(binary, "serve", "-c", cfg, "-v")
	cmd.Dir, cmd.Env = dir, b.env
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	// Wait for the listener and the first (scheduled) run.
	var addr string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(logs.String()); m != nil && strings.Contains(logs.String(), "run finished") {
			addr = m[1]
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if addr == "" {
		t.Fatalf("serve did not listen and sync:\n%s", tail(logs.String()))
	}
	var pages strings.Builder
	for _, p := range []string{"/", "/metrics", "/readyz", "/healthz"} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("GET %s: %d, %d bytes", p, resp.StatusCode, len(body))
		fmt.Fprintf(&pages, "%s\n%s\n", p, body)
	}
	if !strings.Contains(pages.String(), "<html") && !strings.Contains(pages.String(), "<!DOCTYPE") {
		t.Errorf("no status page HTML was fetched:\n%s", tail(pages.String()))
	}
	// A refused webhook: its log line must not echo the token that was tried.
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/sync", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+secretKeyPart[:40]+"x")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	scanForSecrets(t, "status page and metrics", pages.String())
	for _, s := range []string{secretPassword + "-hmac", secretKeyPart[:40]} {
		if strings.Contains(pages.String()+logs.String(), s) {
			t.Errorf("a service secret (%q...) shows", s[:8])
		}
	}
	scanForSecrets(t, "serve logs", logs.String())
}

var listenRE = regexp.MustCompile(`msg=listening what=service addr=(\S+)`)

// syncBuffer is a bytes.Buffer safe for a child's output and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
