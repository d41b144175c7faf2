package main

// Crash recovery (issue 9): `scimbridge sync` as a child process, killed with SIGKILL at ten
// points of a large initial sync against a throttled emulator (points drawn from a logged seed
// inside each step), then run again until it converges.
// After every kill the state file passes SQLite's integrity check and the target holds no
// duplicate; at the end the target equals the directory exactly.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/state"
)

const (
	crashUsers  = 2000
	crashGroups = 50
)

// crashUser is user i of crashDirectory as the target must hold it (id, revision and manager
// id left out), with its manager's id in the directory. Every attribute scimbridge manages is
// set on some users and absent on others: middle name and honorifics on two thirds, a phone on
// four fifths, an address on six sevenths; emailType, phoneType and the address's type and
// formatted form come through the mapping from custom attributes; one user in 97 is suspended;
// some users have a manager among the first seven.
func crashUser(i int) (emulator.DumpUser, string) {
	name := fmt.Sprintf("user%05d@example.com", i)
	u := emulator.DumpUser{ExternalID: fmt.Sprintf("u-%05d", i), UserName: name, DisplayName: fmt.Sprintf("User %05d", i),
		GivenName: "User", FamilyName: fmt.Sprintf("N%05d", i), NickName: fmt.Sprintf("n%d", i),
		ProfileURL: fmt.Sprintf("https://example.com/p/%d", i), Title: []string{"Engineer", "Manager", "Analyst"}[i%3],
		UserType: []string{"Employee", "Contractor"}[i%2], PreferredLanguage: []string{"en-US", "fr-FR"}[i%2],
		Locale: []string{"en-US", "de-DE", "ja-JP"}[i%3], Timezone: []string{"Europe/Paris", "America/Chicago"}[i%2],
		Email: name, EmailType: []string{"work", "home", "other"}[i%3], Active: i%97 != 1, CreatedBy: "scim",
		Enterprise: emulator.DumpEnterprise{EmployeeNumber: fmt.Sprintf("E%05d", i), CostCenter: fmt.Sprintf("CC%d", i%5),
			Organization: "Example Corp", Division: []string{"R&D", "Operations"}[i%2],
			Department: []string{"Engineering", "Finance", "Sales", "Legal"}[i%4]}}
	if i%3 != 0 {
		u.MiddleName, u.HonorificPrefix, u.HonorificSuffix = fmt.Sprintf("M%d", i), []string{"Dr.", "Ms.", "Mr."}[i%3], "Jr."
	}
	if i%5 != 0 {
		u.PhoneNumber, u.PhoneType = fmt.Sprintf("+1 555 %04d", i%10000), []string{"work", "mobile", "home"}[i%3]
	}
	if i%7 != 0 {
		u.Address = &emulator.DumpAddress{Formatted: fmt.Sprintf("%d Main St, Springfield", i), StreetAddress: fmt.Sprintf("%d Main St", i),
			Locality: "Springfield", Region: "IL", PostalCode: fmt.Sprintf("62%03d", i%1000), Country: "US", Type: []string{"work", "home"}[i%2]}
	}
	manager := ""
	if i >= 7 && i%3 == 0 {
		manager = fmt.Sprintf("u-%05d", i%7)
	}
	return u, manager
}

// crashMapping maps the custom attributes crashDirectory writes to emailType, phoneType and the
// address's formatted form and type (the file format's defaults make them "work" or nothing).
const crashMapping = `mapping:
  user:
    emailType: attr("emailKind")
    phoneType: attr("phoneKind")
    address.formatted: attr("formatted")
    address.type: attr("addressKind")
`

// crashDirectory writes the directory file: crashUsers users (see crashUser), crashGroups groups
// of about 80 members each, and g-000 "Everyone" holding every user (a POST of 100 and 19
// PATCHes).
func crashDirectory(t *testing.T, path string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	q := strconv.Quote
	for i := range crashUsers {
		u, manager := crashUser(i)
		e := u.Enterprise
		fmt.Fprintf(&b, "  - id: %s\n    userName: %s\n    displayName: %s\n    givenName: %s\n    familyName: %s\n", u.ExternalID, q(u.UserName), q(u.DisplayName), q(u.GivenName), q(u.FamilyName))
		for _, f := range []struct{ key, value string }{{"middleName", u.MiddleName}, {"honorificPrefix", u.HonorificPrefix},
			{"honorificSuffix", u.HonorificSuffix}, {"nickName", u.NickName}, {"profileUrl", u.ProfileURL}, {"title", u.Title},
			{"userType", u.UserType}, {"preferredLanguage", u.PreferredLanguage}, {"locale", u.Locale}, {"timezone", u.Timezone},
			{"email", u.Email}, {"phone", u.PhoneNumber}, {"employeeNumber", e.EmployeeNumber}, {"costCenter", e.CostCenter},
			{"organization", e.Organization}, {"division", e.Division}, {"department", e.Department}, {"manager", manager}} {
			if f.value != "" {
				fmt.Fprintf(&b, "    %s: %s\n", f.key, q(f.value))
			}
		}
		custom := map[string]string{"emailKind": u.EmailType, "phoneKind": u.PhoneType}
		if a := u.Address; a != nil {
			fmt.Fprintf(&b, "    streetAddress: %s\n    locality: %s\n    region: %s\n    postalCode: %s\n    country: %s\n",
				q(a.StreetAddress), q(a.Locality), q(a.Region), q(a.PostalCode), q(a.Country))
			custom["formatted"], custom["addressKind"] = a.Formatted, a.Type
		}
		if !u.Active {
			b.WriteString("    suspended: true\n")
		}
		b.WriteString("    attributes:\n")
		for _, k := range slices.Sorted(maps.Keys(custom)) {
			if custom[k] != "" {
				fmt.Fprintf(&b, "      %s: %s\n", k, q(custom[k]))
			}
		}
	}
	b.WriteString("groups:\n")
	for g := range crashGroups {
		var members []string
		for i := range crashUsers {
			if g == 0 || i%crashGroups == g || (i/20)%crashGroups == g {
				members = append(members, fmt.Sprintf("u-%05d", i))
			}
		}
		name := fmt.Sprintf("Team %03d", g)
		if g == 0 {
			name = "Everyone"
		}
		fmt.Fprintf(&b, "  - {id: g-%03d, name: %q, members: [%s]}\n", g, name, strings.Join(members, ", "))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// targetConfig writes a config that syncs directory.yaml into srv, with bulk reads through the
// identitystore API; the token comes from $SCIM_TOKEN. Each extra text gets a file of its own.
func targetConfig(t *testing.T, dir string, srv *emulatortest.Server, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`source:
  type: file
  file: {path: directory.yaml}
target:
  scim_url: %s
  token: ${SCIM_TOKEN}
  identity_store_id: %s
  region: us-east-1
  identitystore_endpoint: %s
  concurrency: 16
  rate: {initial: 400}
state: {path: state.db}
data_dir: data
log: {level: warn}
%s`, srv.URL, srv.StoreID, srv.IdentityStoreEndpoint, extra)
	name := "scimbridge.yaml"
	if extra != "" {
		name = fmt.Sprintf("scimbridge-%08x.yaml", crc32.ChecksumIEEE([]byte(extra)))
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// childEnv is the environment of a child sync: the token, and AWS credentials that point nowhere
// but the emulator.
func childEnv(dir, token string) []string {
	return append(os.Environ(), "SCIM_TOKEN="+token, "AWS_ACCESS_KEY_ID=AKIDCRASHTEST", "AWS_SECRET_ACCESS_KEY=crash-test-secret",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"), "HOME="+dir)
}

func writeCount(s emulator.Stats) int64 {
	var n int64
	for k, v := range s {
		if strings.HasPrefix(k, "scim.") && !strings.HasPrefix(k, "scim.List") && !strings.HasPrefix(k, "scim.Get") {
			n += v
		}
	}
	return n
}

// checkNoDuplicates fails on two users or two groups with one externalId or one name.
func checkNoDuplicates(t *testing.T, d emulator.Dump) {
	t.Helper()
	seen := map[string]bool{}
	for _, u := range d.Users {
		for _, k := range []string{"ext:" + u.ExternalID, "name:" + strings.ToLower(u.UserName)} {
			if seen["u"+k] {
				t.Errorf("duplicate user %s", k)
			}
			seen["u"+k] = true
		}
	}
	for _, g := range d.Groups {
		for _, k := range []string{"ext:" + g.ExternalID, "name:" + g.DisplayName} {
			if seen["g"+k] {
				t.Errorf("duplicate group %s", k)
			}
			seen["g"+k] = true
		}
	}
}

func checkStateIntegrity(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, path)
	if err != nil {
		t.Fatalf("state file does not open after a kill: %v", err)
	}
	defer st.Close()
	if err := st.IntegrityCheck(ctx); err != nil {
		t.Fatalf("state file corrupt after a kill: %v", err)
	}
}

func TestCrashRecoveryWithSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the binary 10+ times")
	}
	dir := t.TempDir()
	crashDirectory(t, filepath.Join(dir, "directory.yaml"))
	srv := emulatortest.Start(t, emulator.Options{})
	manual := addUnmanaged(t, srv)
	// The sync starts at 400 requests/s (rate.initial): each run meets 429s before its limiter
	// settles, which the end of the test checks (at 600/s the runs were never throttled).
	srv.Emu.SetFaults(emulator.Faults{RateLimit: 120, Burst: 20})
	srv.Emu.ResetStats()
	cfg := targetConfig(t, dir, srv, crashMapping)
	env := childEnv(dir, srv.Token)

	// Kill points in every step of the initial sync, from the first user creates to the last
	// membership PATCHes of Everyone (2,069 writes in all: 2,000 users, 50 groups, 19 PATCHes).
	// A break-glass user in a Control Tower group, made outside scimbridge, must come through
	// untouched.
	points := crashPoints(t)
	start := time.Now()
	killed := 0
	for i, pt := range points {
		base := srv.Emu.Stats()[pt.op]
		cmd := exec.Command(binary, "sync", "-c", cfg)
		cmd.Dir, cmd.Env = dir, env
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		done := false
		for !done {
			select {
			case err := <-exited:
				t.Logf("point %d (%s): the run finished before the kill: %v", i, pt, err)
				done = true
			case <-time.After(2 * time.Millisecond):
				if srv.Emu.Stats()[pt.op]-base >= pt.at {
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-exited
					killed++
					done = true
				}
			}
		}
		checkStateIntegrity(t, filepath.Join(dir, "state.db"))
		d, err := srv.Emu.Dump()
		if err != nil {
			t.Fatal(err)
		}
		checkNoDuplicates(t, d)
		t.Logf("point %d (%s): killed after %d such requests in the run, %d writes in all; target %s",
			i, pt, srv.Emu.Stats()[pt.op]-base, writeCount(srv.Emu.Stats()), d.Counts())
	}
	if killed < 8 {
		t.Errorf("only %d of %d kills landed in the sync; move the points", killed, len(points))
	}

	// Run again until it succeeds.
	converged := false
	for range 3 {
		out, errOut, code := runEnv(t, dir, env, "sync", "-c", cfg)
		if code == exitOK {
			converged = true
			break
		}
		t.Logf("recovery run: exit %d\n%s\n%s", code, tail(out), errOut)
	}
	if !converged {
		t.Fatal("no recovery run succeeded")
	}
	checkStateIntegrity(t, filepath.Join(dir, "state.db"))
	d, err := srv.Emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	checkNoDuplicates(t, d)
	checkUnmanaged(t, manual, d)
	checkCrashTarget(t, d)

	// A full read finds nothing to do: the state store agrees with the target.
	out, errOut, code := runEnv(t, dir, env, "sync", "-c", cfg, "--full")
	if code != exitOK || !strings.Contains(out, "No changes") {
		t.Errorf("a full run after recovery is not a no-op: exit %d\n%s\n%s", code, tail(out), errOut)
	}
	st := srv.Emu.Stats()
	t.Logf("10 kills and recovery in %s; %d writes for a lower bound of 2,069; %d requests throttled",
		time.Since(start).Round(time.Millisecond), writeCount(st), st["throttled"])
	if st["throttled"] == 0 {
		t.Errorf("the target throttled no request: the runs were not made against a throttled target (%v)", st)
	}
}

// checkCrashTarget compares the target with crashDirectory exactly: every managed attribute of
// every user, and every group's members.
func checkCrashTarget(t *testing.T, d emulator.Dump) {
	t.Helper()
	d.Users = slices.DeleteFunc(slices.Clone(d.Users), func(u emulator.DumpUser) bool { return u.CreatedBy != "scim" })
	d.Groups = slices.DeleteFunc(slices.Clone(d.Groups), func(g emulator.DumpGroup) bool { return g.CreatedBy != "scim" })
	if len(d.Users) != crashUsers || len(d.Groups) != crashGroups {
		t.Fatalf("target holds %s, want %d users and %d groups", d.Counts(), crashUsers, crashGroups)
	}
	ext := map[string]string{}
	for _, u := range d.Users {
		ext[u.ID] = u.ExternalID
	}
	bad := 0
	for _, u := range d.Users {
		var i int
		if _, err := fmt.Sscanf(u.ExternalID, "u-%05d", &i); err != nil {
			t.Fatalf("user %+v", u)
		}
		want, manager := crashUser(i)
		got := u
		got.ID, got.Revision, got.Enterprise.Manager = "", 0, ext[u.Enterprise.Manager]
		want.Enterprise.Manager = manager
		if diff := cmp.Diff(want, got); diff != "" {
			if bad++; bad <= 5 {
				t.Errorf("user %s differs from the directory (-want +got):\n%s", u.ExternalID, diff)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%d users differ from the directory", bad)
	}
	for _, g := range d.Groups {
		var n int
		if _, err := fmt.Sscanf(g.ExternalID, "g-%03d", &n); err != nil {
			t.Fatalf("group %+v", g)
		}
		var want, got []string
		for i := range crashUsers {
			if n == 0 || i%crashGroups == n || (i/20)%crashGroups == n {
				want = append(want, fmt.Sprintf("u-%05d", i))
			}
		}
		for _, m := range g.Members {
			got = append(got, ext[m])
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("group %s (%s): %d members, want %d", g.ExternalID, g.DisplayName, len(got), len(want))
		}
	}
}

// crashPoint kills a run once the target has received at requests of operation op in that run.
type crashPoint struct {
	op string
	at int64
}

func (p crashPoint) String() string { return fmt.Sprintf("%s #%d", p.op, p.at) }

// crashPoints chooses the ten kill points at offsets drawn from a seed inside each step of the
// initial sync: six runs killed among their user creates (managers first; the six offsets add
// up to less than the 2,000 users), two among their group creates (the two add up to less than
// the 50 groups) and two among their membership PATCHes (fewer than the 19 of Everyone). Offsets
// count the requests of the step's operation in the killed run, so each kill lands inside its
// step however much earlier runs did. The seed is logged; SCIMBRIDGE_CRASH_SEED replays one.
func crashPoints(t *testing.T) []crashPoint {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SCIMBRIDGE_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SCIMBRIDGE_CRASH_SEED=%q: %v", v, err)
		}
		seed = n
	}
	rng := rand.New(rand.NewPCG(seed, 0xc4a54))
	var points []crashPoint
	for range 6 {
		points = append(points, crashPoint{"scim.CreateUser", int64(1 + rng.IntN(300))})
	}
	// 16 requests run at once: the first group kill comes after the first wave, most often with
	// some creates done and others in flight; the second may come with all of its wave in flight.
	points = append(points, crashPoint{"scim.CreateGroup", int64(17 + rng.IntN(18))}, crashPoint{"scim.CreateGroup", int64(1 + rng.IntN(12))})
	for range 2 {
		points = append(points, crashPoint{"scim.PatchGroup", int64(1 + rng.IntN(12))})
	}
	t.Logf("kill points %v (SCIMBRIDGE_CRASH_SEED=%d replays them)", points, seed)
	return points
}

// runEnv runs the binary in dir with env and returns stdout, stderr and the exit code.
func runEnv(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
