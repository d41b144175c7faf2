package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/service"
	"github.com/scimbridge/scimbridge/scim/state"
)

// patience bounds every wait of the process tests. It guards against a hang; no assertion
// depends on how fast anything is.
const patience = 90 * time.Second

// logStream collects a process's JSON log lines and lets a test wait for one.
type logStream struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	more  chan struct{}
}

func newLogStream(r io.Reader) *logStream {
	l := &logStream{more: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			_ = json.Unmarshal(sc.Bytes(), &m)
			l.mu.Lock()
			l.raw.Write(sc.Bytes())
			l.raw.WriteByte('\n')
			if m != nil {
				l.lines = append(l.lines, m)
			}
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
		}
		close(l.more)
	}()
	return l
}

func (l *logStream) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// wait returns the first line from index from on that matches, and its index.
func (l *logStream) wait(t *testing.T, from int, what string, match func(m map[string]any) bool) (map[string]any, int) {
	t.Helper()
	deadline := time.After(patience)
	for {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			if match(l.lines[i]) {
				m := l.lines[i]
				l.mu.Unlock()
				return m, i
			}
		}
		l.mu.Unlock()
		select {
		case _, ok := <-l.more:
			if !ok {
				t.Fatalf("the process ended before %s; its log:\n%s", what, l)
			}
		case <-deadline:
			t.Fatalf("no %s within %s; the log:\n%s", what, patience, l)
		}
	}
}

func msg(text string, kv ...any) func(map[string]any) bool {
	return func(m map[string]any) bool {
		if m["msg"] != text {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(m[kv[i].(string)]) != fmt.Sprint(kv[i+1]) {
				return false
			}
		}
		return true
	}
}

// startServe starts `scimbridge serve -c cfg` in dir and returns its log stream and a wait for its
// exit.
func startServe(t *testing.T, dir, cfg string, args ...string) (*exec.Cmd, *logStream, <-chan error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "-c", cfg}, args...)...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := newLogStream(stderr)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return cmd, logs, exited
}

// startEmulator runs `scimbridge emulator` with latency on every request and returns its SCIM URL.
func startEmulator(t *testing.T, token string, latency time.Duration) string {
	t.Helper()
	cmd := exec.Command(binary, "emulator", "--listen", "127.0.0.1:0", "--token", token, "--latency", latency.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if url, ok := strings.CutPrefix(sc.Text(), "SCIM endpoint:"); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return strings.TrimSpace(url)
		}
	}
	t.Fatal("the emulator did not print its SCIM endpoint")
	return ""
}

// addUsers adds n users with ids prefix-0..n-1 to the quickstart directory file.
func addUsers(t *testing.T, dir, prefix string, n int) {
	t.Helper()
	path := filepath.Join(dir, "directory.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var add strings.Builder
	add.WriteString("users:\n")
	for i := range n {
		fmt.Fprintf(&add, "  - id: %s-%d\n    userName: %s.%d@example.com\n    givenName: Test\n    familyName: User%d\n    email: %s.%d@example.com\n\n",
			prefix, i, prefix, i, i, prefix, i)
	}
	edited := strings.Replace(string(b), "users:\n", add.String(), 1)
	if edited == string(b) {
		t.Fatal("the example directory has no users: line: update this test")
	}
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
}

func postSync(t *testing.T, addr, secret, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/sync", strings.NewReader(body))
	now := time.Now()
	req.Header.Set(service.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(service.HeaderSignature, service.Sign([]byte(secret), now, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/sync: %s, want 202", resp.Status)
	}
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe runs `scimbridge serve` as a process against the emulator (itself a process, with
// latency so that a run lasts): the first scheduled sync, a signed targeted webhook, the status
// page in headless Chromium, and SIGTERM in the middle of a large run, which must finish its
// requests in flight, record the run and its state, and exit 0.
func TestServe(t *testing.T) {
	const token, secret = "emulator-token-5150", "webhook-secret-8086"
	scimURL := startEmulator(t, token, 100*time.Millisecond)
	dir := quickstart(t)
	cfg := fmt.Sprintf(`source: {type: file, file: {path: directory.yaml}}
target: {scim_url: %q, token: %q, concurrency: 8}
sync: {guards: {max_deletes: 100, max_delete_percent: 20}}
service:
  listen: 127.0.0.1:0
  interval: 1h
  min_trigger_gap: 0s
  webhook_secret: %q
  shutdown_grace: 60s
  feed: {enabled: false} # the runs this test asks for, alone (TestServeFileFeed has the feed)
log: {format: json}
data_dir: data
`, scimURL, token, secret)
	if err := os.WriteFile(filepath.Join(dir, "serve.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, logs, exited := startServe(t, dir, "serve.yaml")

	line, _ := logs.wait(t, 0, "listening line", msg("listening", "what", "service"))
	addr := line["addr"].(string)
	line, at := logs.wait(t, 0, "first run", msg("run finished", "trigger", "schedule"))
	if line["result"] != "success" || line["created"] != float64(21) {
		t.Fatalf("first run: %v", line)
	}
	if code, body := getText(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz after the first sync: %d %s", code, body)
	}
	// One replica leads from its start: no standby warning about a lock it had not tried yet.
	if text := logs.String(); strings.Contains(text, "standby:") {
		t.Errorf("a lone replica logged a standby warning:\n%s", text)
	}

	// A targeted sync of one new user, asked by a signed webhook.
	addUsers(t, dir, "u-new", 1)
	postSync(t, addr, secret, `{"users":["u-new-0"]}`)
	line, at = logs.wait(t, at, "targeted run", msg("run finished", "trigger", "webhook"))
	if line["result"] != "success" || line["created"] != float64(1) || line["only"] != "users u-new-0" {
		t.Fatalf("targeted run: %v", line)
	}
	// The run's log line comes before the controller records the run in the metrics: poll.
	counted := false
	for deadline := time.Now().Add(5 * time.Second); !counted && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, text := getText(t, "http://"+addr+"/metrics")
		counted = strings.Contains(text, `scimbridge_runs_total{dry_run="false",result="success",trigger="webhook"} 1`)
	}
	if !counted {
		t.Errorf("/metrics does not count the webhook run")
	}

	t.Run("status page in chromium", func(t *testing.T) {
		// No ui_password nor bearer token: counts only, no names, no plan, no form.
		dom := chromiumPage(t, "http://"+addr+"/", "status-page-counts-only.png")
		for _, want := range []string{`id="runs"`, ">webhook<", ">schedule<", `class="r-success"`, ">targeted<", `id="counts-only"`} {
			if !strings.Contains(dom, want) {
				t.Errorf("the rendered page lacks %q", want)
			}
		}
		if rows := strings.Count(dom, "<tr>"); rows < 3 {
			t.Errorf("the runs table has %d rows, want a header and 2 runs", rows)
		}
		for _, s := range []string{secret, token, "u-new-0", "@example.com", `id="plan"`, "<form", scimURL} {
			if strings.Contains(dom, s) {
				t.Errorf("the page shows %q to anyone", s)
			}
		}
	})

	// A large full run, interrupted by SIGTERM once it has started creating.
	const many = 150
	re := regexp.MustCompile(`(?m)^scimbridge_api_requests_total\{code="2xx",operation="CreateUser",target="scim"\} (\d+)`)
	createUsers := func() string {
		_, text := getText(t, "http://"+addr+"/metrics")
		if m := re.FindStringSubmatch(text); m != nil {
			return m[1]
		}
		return ""
	}
	before := createUsers()
	addUsers(t, dir, "u-bulk", many)
	postSync(t, addr, secret, "")
	_, at = logs.wait(t, at, "bulk run start", msg("run started", "trigger", "webhook"))
	for deadline := time.Now().Add(patience); createUsers() == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the bulk run created nothing")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM; log:\n%s", err, logs)
		}
	case <-time.After(patience):
		t.Fatalf("serve did not exit after SIGTERM; log:\n%s", logs)
	}
	line, _ = logs.wait(t, at, "interrupted run's end", msg("run finished", "trigger", "webhook"))
	created := int(line["created"].(float64))
	t.Logf("SIGTERM: the run stopped after %d of %d creates and was recorded", created, many)
	if created == 0 || created >= many || line["result"] != "failed" {
		t.Fatalf("the interrupted run: %v, want some but not all %d users created and result failed", line, many)
	}

	// The run is recorded as finished (not "interrupted"), and the state store knows exactly
	// what was created: a trusted dry run plans the rest, no more, no less.
	st, err := state.Open(context.Background(), filepath.Join(dir, "data", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.Runs(context.Background(), 1)
	st.Close()
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs: %v %v", runs, err)
	}
	if r := runs[0]; r.Ended.IsZero() || r.Result != state.ResultFailed || r.Counts.Created != created || slicesContain(r.Errors, state.InterruptedError) {
		t.Errorf("the interrupted run is recorded as %+v", r)
	}
	out, errOut, code := run(t, dir, "sync", "-c", "serve.yaml", "--dry-run", "-o", "json")
	var res struct {
		FullRead bool
		Summary  struct{ CreateUsers, UpdateUsers int }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitChanges {
		t.Fatalf("dry run after the interrupted run: exit %d %v\n%s\n%s", code, err, out, errOut)
	}
	if res.Summary.CreateUsers != many-created || res.Summary.UpdateUsers != 0 {
		t.Errorf("after the interrupted run the plan creates %d users, want %d (%+v)", res.Summary.CreateUsers, many-created, res)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// chromiumPage renders url in headless Chromium, writes a screenshot named name into the test's
// output folder ($SCIMBRIDGE_TEST_OUTPUT, else a temporary folder) and returns the DOM after
// rendering. Without Chromium the test is skipped, except in CI (CI=true), where it fails.
func chromiumPage(t *testing.T, url, name string) string {
	t.Helper()
	bin := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (Debian package chromium; see .ci/test-deps.sh)")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	outDir := os.Getenv("SCIMBRIDGE_TEST_OUTPUT")
	if outDir == "" {
		outDir = t.TempDir()
	} else if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(outDir, name)
	browse := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--window-size=1400,900"}
		cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	browse("--screenshot=" + shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot written: %v", err)
	}
	t.Logf("status page screenshot: %s", shot)
	dom := browse("--dump-dom")
	if !strings.Contains(dom, "</html>") {
		t.Fatalf("chromium dumped no page: %q", dom)
	}
	return dom
}

// TestServeStatusPageSignIn runs `scimbridge serve` with a UI password and looks at the status
// page in headless Chromium as a person would: before signing in (counts and a sign-in form),
// then with the session the password started (the plan and the run form), and asks for a dry
// run with the form's CSRF token.
func TestServeStatusPageSignIn(t *testing.T) {
	const token, password = "emulator-token-7171", "ui-password-6262"
	scimURL := startEmulator(t, token, 0)
	dir := quickstart(t)
	cfg := fmt.Sprintf(`source: {type: file, file: {path: directory.yaml}}
target: {scim_url: %q, token: %q}
service:
  listen: 127.0.0.1:0
  interval: 1h
  min_trigger_gap: 0s
  ui_password: %q
log: {format: json}
data_dir: data
`, scimURL, token, password)
	if err := os.WriteFile(filepath.Join(dir, "serve.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, logs, _ := startServe(t, dir, "serve.yaml")
	line, _ := logs.wait(t, 0, "listening line", msg("listening", "what", "service"))
	addr := line["addr"].(string)
	_, at := logs.wait(t, 0, "first run", msg("run finished", "trigger", "schedule"))

	dom := chromiumPage(t, "http://"+addr+"/", "status-page-sign-in.png")
	for _, want := range []string{`id="runs"`, `id="login-form"`, `type="password"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page before signing in lacks %q", want)
		}
	}
	for _, s := range []string{"@example.com", `id="plan"`, `id="run-form"`, scimURL} {
		if strings.Contains(dom, s) {
			t.Errorf("the page before signing in shows %q", s)
		}
	}

	// Sign in as the form does; the answer sets the session cookie.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm("http://"+addr+"/ui/login", url.Values{"password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "scimbridge_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in: %s cookie %+v, want 303 and an HttpOnly, SameSite=Strict session cookie", resp.Status, session)
	}
	// Chromium has no flag for a cookie: a proxy adds the session to its requests.
	target, _ := url.Parse("http://" + addr)
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Header.Set("Cookie", session.Name+"="+session.Value)
	}})
	defer proxy.Close()
	dom = chromiumPage(t, proxy.URL+"/", "status-page-signed-in.png")
	for _, want := range []string{`id="plan"`, "@example.com", `id="run-form"`, `name="csrf"`, scimURL} {
		if !strings.Contains(dom, want) {
			t.Errorf("the signed-in page lacks %q", want)
		}
	}
	for _, s := range []string{password, token, session.Value} {
		if strings.Contains(dom, s) {
			t.Errorf("the signed-in page shows a secret")
		}
	}

	// A dry run asked from the form, with its CSRF token.
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatal("no CSRF token in the signed-in page")
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/ui/run", strings.NewReader(url.Values{"csrf": {m[1]}, "mode": {"dry-run"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(session)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?requested=dry-run" {
		t.Fatalf("run form: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	line, _ = logs.wait(t, at, "the dry run", msg("run finished", "trigger", "manual"))
	if line["dry_run"] != true {
		t.Errorf("the form's run: %v, want a dry run", line)
	}
}
