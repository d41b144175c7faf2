package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// instruction is one Dockerfile instruction with its arguments.
type instruction struct {
	cmd   string // lower case
	args  []string
	flags []string
	json  bool // exec (JSON) form
	line  int
	orig  string
	stage int
}

// parseDockerfile parses ../Dockerfile with BuildKit's parser.
func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	var out []instruction
	stage := -1
	for _, n := range res.AST.Children {
		in := instruction{cmd: strings.ToLower(n.Value), flags: n.Flags, json: n.Attributes["json"], line: n.StartLine, orig: n.Original}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		if in.cmd == "from" {
			stage++
		}
		in.stage = stage
		out = append(out, in)
	}
	return out
}

// TestDockerfileRules lints the Dockerfile (hadolint is not packaged here): pinned base images,
// no ADD, a non-root USER in the final stage, exec-form ENTRYPOINT/CMD/HEALTHCHECK, one volume that
// holds the working directory and TMPDIR, OCI labels, and the Makefile's static build flags.
func TestDockerfileRules(t *testing.T) {
	ins := parseDockerfile(t)
	last := ins[len(ins)-1].stage
	final := map[string][]instruction{}
	for _, in := range ins {
		if in.stage == last {
			final[in.cmd] = append(final[in.cmd], in)
		}
		switch in.cmd {
		case "from":
			image := in.args[0]
			_, tag, hasTag := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
			if !strings.Contains(image, "@sha256:") && (!hasTag || tag == "latest") {
				t.Errorf("line %d: base image %s is not pinned to a tag or digest", in.line, image)
			}
		case "add":
			t.Errorf("line %d: ADD (use COPY; never fetch URLs at build time): %s", in.line, in.orig)
		case "run":
			if strings.Contains(in.orig, "curl ") || strings.Contains(in.orig, "wget ") {
				t.Errorf("line %d: downloads during the build: %s", in.line, in.orig)
			}
		}
	}
	if last < 1 {
		t.Fatal("want a multi-stage build")
	}
	users := final["user"]
	if len(users) == 0 {
		t.Fatal("the final stage sets no USER")
	}
	if u := users[len(users)-1].args[0]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("final USER is %s", u)
	}
	check := func(cmd string, want ...string) {
		t.Helper()
		got := final[cmd]
		if len(got) != 1 || !got[0].json || !slices.Equal(got[0].args, want) {
			t.Errorf("%s: got %+v, want exec form %q", strings.ToUpper(cmd), got, want)
		}
	}
	check("entrypoint", "/scimbridge")
	check("cmd", "serve")
	if hc := final["healthcheck"]; len(hc) != 1 || !strings.Contains(hc[0].orig, `CMD ["/scimbridge", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK: %+v", hc)
	}
	if v := final["volume"]; len(v) != 1 || !slices.Equal(v[0].args, []string{"/var/lib/scimbridge"}) {
		t.Errorf("VOLUME: got %+v, want exactly /var/lib/scimbridge", v)
	}
	if w := final["workdir"]; len(w) != 1 || w[0].args[0] != "/var/lib/scimbridge" {
		t.Errorf("WORKDIR: got %+v, want the volume (the default data_dir lands in it)", w)
	}
	env := map[string]string{}
	for _, e := range final["env"] {
		for i := 0; i+1 < len(e.args); i += 3 { // name, value, separator
			env[e.args[i]] = e.args[i+1]
		}
	}
	if env["TMPDIR"] != "/var/lib/scimbridge" || env["SCIMBRIDGE_CONFIG"] == "" {
		t.Errorf("ENV %v: want TMPDIR in the volume and SCIMBRIDGE_CONFIG", env)
	}
	labels := ""
	for _, l := range final["label"] {
		labels += strings.Join(l.args, " ")
	}
	for _, k := range []string{"title", "description", "source", "version", "revision", "created"} {
		if !strings.Contains(labels, "org.opencontainers.image."+k) {
			t.Errorf("no OCI label org.opencontainers.image.%s", k)
		}
	}
	build := buildCommand(t, ins)
	makefile, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w -X main.version="} {
		if !strings.Contains(build, want) || !strings.Contains(string(makefile), want) {
			t.Errorf("the Dockerfile's build (%s) and the Makefile must both use %s", build, want)
		}
	}
}

// buildCommand returns the Dockerfile's `go build` command line.
func buildCommand(t *testing.T, ins []instruction) string {
	t.Helper()
	for _, in := range ins {
		if in.cmd != "run" {
			continue
		}
		cmd := strings.Join(in.args, " ")
		if i := strings.Index(cmd, "CGO_ENABLED="); i >= 0 && strings.Contains(cmd, "go build") {
			return strings.TrimSpace(cmd[i:])
		}
	}
	t.Fatal("no `CGO_ENABLED=... go build` RUN line in the Dockerfile")
	return ""
}

// shellWords splits a command line on blanks, honouring double quotes, after expanding ${VAR}.
func shellWords(s string, vars map[string]string) []string {
	s = os.Expand(s, func(k string) string { return vars[k] })
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, inWord = !inQuote, true
		case (r == ' ' || r == '\t') && !inQuote:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestStaticBinary builds scimbridge exactly as the Dockerfile does and runs what the image runs:
// version, healthcheck, sync --dry-run on the quickstart, and serve probed by healthcheck, from a
// working directory and TMPDIR that stand for the image's volume.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	words := shellWords(buildCommand(t, parseDockerfile(t)), map[string]string{
		"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "VERSION": "9.9.9-deploytest"})
	var env, args []string
	for len(words) > 0 && strings.Contains(words[0], "=") {
		env, words = append(env, words[0]), words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("unexpected build command %q", words)
	}
	bin := filepath.Join(t.TempDir(), "scimbridge")
	for i := 2; i < len(words); i++ {
		if words[i] == "-o" && i+1 < len(words) {
			words[i+1] = bin
		}
		args = append(args, words[i])
	}
	start := time.Now()
	build := exec.Command("go", append([]string{"build"}, args...)...)
	build.Dir = ".."
	build.Env = append(os.Environ(), env...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %q: %v\n%s", args, err, out)
	}
	t.Logf("static build took %s", time.Since(start).Round(time.Millisecond))
	if out, err := exec.Command("file", bin).Output(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Errorf("not a static binary: %s", out)
	}

	volume := t.TempDir() // stands for /var/lib/scimbridge
	cfgDir := t.TempDir() // stands for /etc/scimbridge
	for _, name := range []string{"scimbridge.yaml", "directory.yaml"} {
		b, err := os.ReadFile(filepath.Join("examples", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfgDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(extraEnv []string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = volume
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + volume, "TMPDIR=" + volume}, extraEnv...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return out.String(), ee.ExitCode()
		case err != nil:
			t.Fatal(err)
		}
		return out.String(), 0
	}

	if out, code := run(nil, "version"); code != 0 || !strings.Contains(out, "scimbridge 9.9.9-deploytest") {
		t.Errorf("version: exit %d, output %q; want the stamped version", code, out)
	}

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer ok.Close()
	if out, code := run(nil, "healthcheck", "--url", ok.URL+"/healthz"); code != 0 {
		t.Errorf("healthcheck on 200: exit %d, %s", code, out)
	}
	if out, code := run(nil, "healthcheck", "--url", ok.URL+"/readyz"); code != 1 || !strings.Contains(out, "503") {
		t.Errorf("healthcheck on 503: exit %d, %s", code, out)
	}
	closed := freePort(t)
	if out, code := run(nil, "healthcheck", "--url", "http://"+closed+"/healthz", "--timeout", "2s"); code != 1 {
		t.Errorf("healthcheck on a closed port: exit %d, %s", code, out)
	}

	cfg := filepath.Join(cfgDir, "scimbridge.yaml")
	out, code := run(nil, "sync", "--dry-run", "--config", cfg)
	if code != 2 || !strings.Contains(out, "+") {
		t.Errorf("sync --dry-run on the quickstart: exit %d (want 2: changes found)\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(volume, "data")); err != nil {
		t.Errorf("the default data_dir is not under the working directory (the image's volume): %v", err)
	}

	// serve, probed the way the image's HEALTHCHECK does: the URL comes from SCIMBRIDGE_SERVICE_LISTEN.
	listen := freePort(t)
	serveEnv := []string{"SCIMBRIDGE_SERVICE_LISTEN=" + listen}
	serve := exec.Command(bin, "serve", "--config", cfg)
	serve.Dir = volume
	serve.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + volume, "TMPDIR=" + volume}, serveEnv...)
	var serveOut bytes.Buffer
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = serve.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- serve.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = serve.Process.Kill()
			<-done
		}
	}()
	var hcOut string
	healthy := false
	for i := 0; i < 300 && !healthy; i++ { // up to about a minute on a loaded machine
		hcOut, code = run(serveEnv, "healthcheck", "--timeout", "1s")
		healthy = code == 0
		if !healthy {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !healthy {
		t.Fatalf("healthcheck never passed against serve on %s: %s\nserve output:\n%s", listen, hcOut, serveOut.String())
	}
	if !strings.Contains(hcOut, "http://"+listen+"/healthz") {
		t.Errorf("healthcheck probed %q, want the SCIMBRIDGE_SERVICE_LISTEN address %s", hcOut, listen)
	}
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(fmt.Errorf("close: %w", err))
	}
	return addr
}
