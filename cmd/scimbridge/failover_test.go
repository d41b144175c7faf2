package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

// replicaProxy stands between one serve replica and the emulator and records when each write
// request (POST, PUT, PATCH, DELETE) of that replica arrived, and whether the emulator accepted
// it (any answer but 429): the emulator's own counters are per operation, these per client.
type replicaProxy struct {
	name     string
	srv      *httptest.Server
	mu       sync.Mutex
	at       []time.Time
	accepted []bool
}

// statusRecorder keeps the status of an answer passing through the proxy.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func newReplicaProxy(t *testing.T, name string, target string) *replicaProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &replicaProxy{name: name}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			rp.ServeHTTP(w, r)
			return
		}
		at := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(rec, r)
		p.mu.Lock()
		p.at = append(p.at, at)
		p.accepted = append(p.accepted, rec.status != http.StatusTooManyRequests)
		p.mu.Unlock()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// writes returns how many writes arrived at or after from, and how many of them the emulator
// accepted.
func (p *replicaProxy) writes(from time.Time) (sent, accepted int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, at := range p.at {
		if !at.Before(from) {
			sent++
			if p.accepted[i] {
				accepted++
			}
		}
	}
	return sent, accepted
}

// firstWrite returns the first write at or after from.
func (p *replicaProxy) firstWrite(from time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, at := range p.at {
		if !at.Before(from) {
			return at, true
		}
	}
	return time.Time{}, false
}

// replica is one `scimbridge serve` process of the cluster.
type replica struct {
	name   string
	cmd    *exec.Cmd
	logs   *logStream
	exited <-chan error
	proxy  *replicaProxy
	addr   string
}

// haCluster is serve replicas on one PostgreSQL state and one emulator.
type haCluster struct {
	t        *testing.T
	dir      string
	srv      *emulatortest.Server
	dbURL    string
	secret   string
	args     []string // extra serve flags (lease timings)
	replicas []*replica
	n        int
}

// haDirectory writes a directory of users u0000.. and groups: g00..g19 (user i in g(i%20)) and
// "everyone" with every user, and returns the lower bound of its initial sync.
func haDirectory(t *testing.T, dir string, users int) int {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for i := range users {
		fmt.Fprintf(&b, "  - {id: u%04d, userName: user%04d@example.com, givenName: User, familyName: N%04d, email: user%04d@example.com}\n", i, i, i, i)
	}
	b.WriteString("groups:\n")
	lb := users
	for g := range 20 {
		fmt.Fprintf(&b, "  - id: g%02d\n    name: Team %02d\n    members: [", g, g)
		n := 0
		for i := g; i < users; i += 20 {
			if n > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "u%04d", i)
			n++
		}
		b.WriteString("]\n")
		lb += 1 + (max(n-100, 0)+99)/100
	}
	b.WriteString("  - id: everyone\n    name: Everyone\n    members: [")
	for i := range users {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "u%04d", i)
	}
	b.WriteString("]\n")
	lb += 1 + (max(users-100, 0)+99)/100
	if err := os.WriteFile(filepath.Join(dir, "directory.yaml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return lb
}

func newHACluster(t *testing.T, args ...string) *haCluster {
	t.Helper()
	c := &haCluster{t: t, dir: t.TempDir(), srv: emulatortest.Start(t, emulator.Options{}), dbURL: pgtest.URL(t),
		secret: "failover-webhook-secret", args: args}
	return c
}

// start starts one more replica and waits until it serves.
func (c *haCluster) start() *replica {
	t := c.t
	t.Helper()
	c.n++
	name := string(rune('a' + c.n - 1))
	p := newReplicaProxy(t, name, c.srv.HTTP.URL)
	cfg := fmt.Sprintf(`source: {type: file, file: {path: directory.yaml}}
target: {scim_url: %q, token: %q, concurrency: 8}
state: {url: %q}
service: {listen: "127.0.0.1:0", interval: 1h, min_trigger_gap: 0s, webhook_secret: %q, shutdown_grace: 30s}
log: {format: json}
data_dir: data-%s
`, p.srv.URL+c.srv.Emu.SCIMPath(), c.srv.Token, c.dbURL, c.secret, name)
	file := "serve-" + name + ".yaml"
	if err := os.WriteFile(filepath.Join(c.dir, file), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, logs, exited := startServe(t, c.dir, file, c.args...)
	line, _ := logs.wait(t, 0, "listening line of replica "+name, msg("listening", "what", "service"))
	r := &replica{name: name, cmd: cmd, logs: logs, exited: exited, proxy: p, addr: line["addr"].(string)}
	c.replicas = append(c.replicas, r)
	return r
}

// waitLeader waits until one of live logs that it leads (from its log line index from[r], or
// 0) and returns it.
func (c *haCluster) waitLeader(live []*replica, from map[*replica]int, what string) *replica {
	t := c.t
	t.Helper()
	leads := func(m map[string]any) bool {
		return m["msg"] == "leading: holds the state lock" || m["msg"] == "took the state lock; this replica now runs the syncs"
	}
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		for _, r := range live {
			r.logs.mu.Lock()
			lines := r.logs.lines[from[r]:]
			found := slices.ContainsFunc(lines, leads)
			r.logs.mu.Unlock()
			if found {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no leader among the live replicas (%s) within %s", what, patience)
	return nil
}

// timeline says when the replica logged the steps of a takeover, after since.
func (r *replica) timeline(since time.Time, from int) string {
	r.logs.mu.Lock()
	defer r.logs.mu.Unlock()
	var parts []string
	seen := map[string]bool{}
	for _, m := range r.logs.lines[from:] {
		text, _ := m["msg"].(string)
		switch text {
		case "took the state lock; this replica now runs the syncs", "run started", "reading the target", "run finished":
		default:
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["time"]))
		if err != nil || seen[text] {
			continue
		}
		seen[text] = true
		parts = append(parts, fmt.Sprintf("%s +%s", text, at.Sub(since).Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// count returns how many lines the stream holds.
func (l *logStream) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// mark returns the current log position of every replica.
func (c *haCluster) mark() map[*replica]int {
	m := map[*replica]int{}
	for _, r := range c.replicas {
		m[r] = r.logs.count()
	}
	return m
}

// waitConverged waits until the target holds exactly the directory: users by userName, no
// duplicate, every group once with its members.
func (c *haCluster) waitConverged(users int) {
	t := c.t
	t.Helper()
	want := map[string][]string{"Everyone": nil}
	for i := range users {
		want["Everyone"] = append(want["Everyone"], fmt.Sprintf("user%04d@example.com", i))
		g := fmt.Sprintf("Team %02d", i%20)
		want[g] = append(want[g], fmt.Sprintf("user%04d@example.com", i))
	}
	var got map[string][]string
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		d, err := c.srv.Emu.Dump()
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]string{}
		exts := map[string]bool{}
		for _, u := range d.Users {
			if _, dup := names[u.ID]; dup || exts[u.ExternalID] {
				t.Fatalf("duplicate user %s (%s)", u.UserName, u.ExternalID)
			}
			names[u.ID], exts[u.ExternalID] = u.UserName, true
		}
		got = map[string][]string{}
		for _, g := range d.Groups {
			if _, dup := got[g.DisplayName]; dup {
				t.Fatalf("duplicate group %s", g.DisplayName)
			}
			ms := []string{}
			for _, m := range g.Members {
				ms = append(ms, names[m])
			}
			slices.Sort(ms)
			got[g.DisplayName] = ms
		}
		if len(d.Users) == users && cmp.Diff(want, got) == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the target did not converge within %s (-want +got):\n%s", patience, cmp.Diff(want, got))
}

// waitCreates waits until the emulator has taken at least n user creates since its stats were
// last reset.
func (c *haCluster) waitCreates(n int64, what string) {
	c.t.Helper()
	deadline := time.Now().Add(patience)
	for c.srv.Emu.Stats()["scim.CreateUser"] < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: the emulator took %d user creates within %s, want %d", what, c.srv.Emu.Stats()["scim.CreateUser"], patience, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func acceptedWriteCount(st emulator.Stats) int {
	n := 0
	for k, v := range st {
		op, ok := strings.CutPrefix(k, "scim.")
		if !ok {
			continue
		}
		for _, w := range []string{"Create", "Put", "Patch", "Delete"} {
			if strings.HasPrefix(op, w) {
				n += int(v)
			}
		}
	}
	return n
}

// TestFailover runs three serve replicas on one PostgreSQL state and the emulator. The leader is
// killed with SIGKILL in the middle of an initial sync of 2,000 users; another replica takes over
// within the lease and finishes; the target then equals the directory, with no duplicate and no
// lost membership, and the follower never wrote to it. A webhook sent to the follower is run by
// the leader. Then the new leader is paused (SIGSTOP) past its lease: the third replica takes
// over, and the paused one, woken up (SIGCONT), is fenced: it starts no request and its state
// writes are refused.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the binary and PostgreSQL")
	}
	const users = 2000
	c := newHACluster(t, "--lease", "2s", "--keepalive", "400ms", "--standby-retry", "300ms")
	lb := haDirectory(t, c.dir, users)
	c.srv.Emu.SetFaults(emulator.Faults{Latency: 5 * time.Millisecond})

	a := c.start()
	if c.waitLeader([]*replica{a}, nil, "first replica") != a {
		t.Fatal("the first replica does not lead")
	}
	b, cc := c.start(), c.start()
	for _, r := range []*replica{b, cc} {
		r.logs.wait(t, 0, "follower line of replica "+r.name, msg("follower: not running syncs; requests go to the leader"))
	}

	// Kill the leader in the middle of the initial sync.
	c.waitCreates(600, "the initial sync")
	at := c.mark()
	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	c.srv.Emu.SetFaults(emulator.Faults{})
	next := c.waitLeader([]*replica{b, cc}, at, "after the kill")
	follower := b
	if next == b {
		follower = cc
	}
	var first time.Time
	for deadline := time.Now().Add(30 * time.Second); ; {
		if at, ok := next.proxy.firstWrite(killed); ok {
			first = at
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new leader %s wrote nothing within %s of the kill; its log:\n%s", next.name, patience, next.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("failover: replica %s wrote %s after the leader was killed (%s)", next.name, first.Sub(killed).Round(time.Millisecond), next.timeline(killed, at[next]))
	if d := first.Sub(killed); d > 20*time.Second {
		t.Errorf("failover took %s, want under 20 s", d)
	}
	c.srv.Emu.SetFaults(emulator.Faults{})
	c.waitConverged(users)
	if line, _ := next.logs.wait(t, 0, "the new leader's run", msg("run finished")); line["result"] != "success" {
		t.Errorf("the new leader's run: %v", line)
	}
	total := acceptedWriteCount(c.srv.Emu.Stats())
	t.Logf("writes of the failover run: %d accepted by the target for a lower bound of %d (%.3fx)", total, lb, float64(total)/float64(lb))
	if n, _ := follower.proxy.writes(time.Time{}); n != 0 {
		t.Errorf("follower %s wrote %d requests to the target, want 0", follower.name, n)
	}
	for r, want := range map[*replica]string{next: "ready: leader\n", follower: "ready: follower\n"} {
		if code, body := getText(t, "http://"+r.addr+"/readyz"); code != 200 || body != want {
			t.Errorf("/readyz of replica %s: got %d %q, want 200 %q", r.name, code, body, want)
		}
	}

	// A webhook sent to the follower is recorded in the database and run by the leader.
	from := next.logs.count()
	postSync(t, follower.addr, c.secret, `{"users":["u0001"]}`)
	next.logs.wait(t, from, "the leader picking up the follower's request", msg("running a request a follower recorded"))
	next.logs.wait(t, from, "the requested run", msg("run finished", "trigger", "webhook"))

	// 600 people join; pause the leader in the middle of their creates, past its lease.
	paused := next
	other := follower
	haDirectory(t, c.dir, users+600)
	c.srv.Emu.SetFaults(emulator.Faults{Latency: 20 * time.Millisecond})
	c.srv.Emu.ResetStats()
	from = paused.logs.count()
	postSync(t, paused.addr, c.secret, `{}`)
	paused.logs.wait(t, from, "the run to pause", msg("run started"))
	c.waitCreates(100, "the run to pause")
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	at = c.mark()
	stopped := time.Now()
	if got := c.waitLeader([]*replica{other}, at, "after the pause"); got != other {
		t.Fatal("the follower did not take over")
	}
	t.Logf("replica %s took over %s after replica %s was paused", other.name, time.Since(stopped).Round(time.Millisecond), paused.name)
	woke := time.Now()
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	paused.logs.wait(t, from, "the woken leader noticing", msg("lost the leadership; runs stop at the next request boundary"))
	paused.logs.wait(t, from, "the woken leader's state write refused", func(m map[string]any) bool {
		return strings.Contains(fmt.Sprint(m["err"]), "fenced")
	})
	time.Sleep(time.Second)
	// A request past its check when the process stopped (one waiting in the client's limiter)
	// goes out when it wakes: at most one accepted write per worker.
	sent, accepted := paused.proxy.writes(woke)
	t.Logf("the paused leader sent %d writes after it woke up, %d of them accepted (the rest throttled)", sent, accepted)
	if accepted > 8 {
		t.Errorf("the paused leader had %d writes accepted after it woke up; want at most the 8 workers' requests already past their check", accepted)
	}
	if code, body := getText(t, "http://"+paused.addr+"/readyz"); code != 200 || body != "ready: follower\n" {
		t.Errorf("/readyz of the woken replica: got %d %q, want a follower", code, body)
	}
	c.srv.Emu.SetFaults(emulator.Faults{})
	c.waitConverged(users + 600)
	if n := c.srv.Emu.Stats()["scim.CreateUser"]; n != 600 {
		t.Errorf("user creates of the paused run and its takeover: got %d, want 600 (none twice)", n)
	}
}

// TestFailoverFigures measures failover with the default settings (lease 15 s, keepalive 3 s,
// retry 2 s) over SCIMBRIDGE_FAILOVER_KILLS kills, each in the middle of an initial sync of 2,000
// users on a fresh database and emulator (20 ms per request): the time from the SIGKILL to the
// lock taken by another replica and to its first write, and the writes of each run against the
// lower bound. Opt-in: it takes about half a minute per kill.
//
//	SCIMBRIDGE_FAILOVER_KILLS=10 go test -run TestFailoverFigures -v ./cmd/scimbridge/
func TestFailoverFigures(t *testing.T) {
	kills, _ := strconv.Atoi(os.Getenv("SCIMBRIDGE_FAILOVER_KILLS"))
	if kills <= 0 {
		t.Skip("set SCIMBRIDGE_FAILOVER_KILLS=10 to measure failover over 10 kills")
	}
	const users = 2000
	var lockTimes, writeTimes []time.Duration
	var ratios []float64
	for i := range kills {
		c := newHACluster(t)
		lb := haDirectory(t, c.dir, users)
		c.srv.Emu.SetFaults(emulator.Faults{Latency: 20 * time.Millisecond})
		a := c.start()
		c.waitLeader([]*replica{a}, nil, "first replica")
		b, cc := c.start(), c.start()
		for _, r := range []*replica{b, cc} {
			r.logs.wait(t, 0, "follower line of replica "+r.name, msg("follower: not running syncs; requests go to the leader"))
		}
		c.waitCreates(int64(300+150*i), "the initial sync")
		at := c.mark()
		killed := time.Now()
		if err := a.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-a.exited
		next := c.waitLeader([]*replica{b, cc}, at, "after the kill")
		lockAt := time.Since(killed)
		var first time.Time
		for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if w, ok := next.proxy.firstWrite(killed); ok {
				first = w
				break
			}
		}
		if first.IsZero() {
			t.Fatalf("kill %d: the new leader wrote nothing", i+1)
		}
		c.waitConverged(users)
		writes := acceptedWriteCount(c.srv.Emu.Stats())
		lockTimes = append(lockTimes, lockAt)
		writeTimes = append(writeTimes, first.Sub(killed))
		ratios = append(ratios, float64(writes)/float64(lb))
		t.Logf("kill %2d: lock taken after %s, first write after %s (%s); writes %d for a lower bound of %d (%.3fx)", i+1,
			lockAt.Round(time.Millisecond), first.Sub(killed).Round(time.Millisecond), next.timeline(killed, at[next]), writes, lb, float64(writes)/float64(lb))
		for _, r := range []*replica{b, cc} {
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	}
	slices.Sort(lockTimes)
	slices.Sort(writeTimes)
	slices.Sort(ratios)
	t.Logf("over %d kills: lock taken min %s median %s max %s; first write min %s median %s max %s; writes/lower bound min %.3f max %.3f",
		kills, lockTimes[0].Round(time.Millisecond), lockTimes[len(lockTimes)/2].Round(time.Millisecond), lockTimes[len(lockTimes)-1].Round(time.Millisecond),
		writeTimes[0].Round(time.Millisecond), writeTimes[len(writeTimes)/2].Round(time.Millisecond), writeTimes[len(writeTimes)-1].Round(time.Millisecond),
		ratios[0], ratios[len(ratios)-1])
	if worst := writeTimes[len(writeTimes)-1]; worst > 20*time.Second {
		t.Errorf("the slowest failover took %s, want under 20 s", worst)
	}
}
