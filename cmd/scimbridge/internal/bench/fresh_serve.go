package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// serveProc is `scimbridge serve` running as a child process.
type serveProc struct {
	cmd    *exec.Cmd
	addr   string
	logf   *os.File
	done   chan error
	exited error
}

func startServe(ctx context.Context, binary, cfgPath, logPath, addr string, args ...string) (*serveProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, binary, append([]string{"serve", "--config", cfgPath}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &serveProc{cmd: cmd, addr: addr, logf: logf, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	return s, nil
}

// stop ends serve with SIGTERM (SIGKILL after 30 s); it may be called more than once.
func (s *serveProc) stop() error {
	if s.cmd == nil {
		return s.exited
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case s.exited = <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		s.exited = <-s.done
	}
	s.cmd = nil
	s.logf.Close()
	return s.exited
}

// serveMetrics are the figures the bench reads from serve's /metrics.
type serveMetrics struct {
	runs, runsInProgress, lowerBound, fullReads, targetedReads, watching float64
}

func (s *serveProc) scrape() (serveMetrics, error) {
	var m serveMetrics
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		return m, fmt.Errorf("scrape serve's /metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (serveMetrics, error) {
	var m serveMetrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "scimbridge_runs_total{") && strings.Contains(name, `dry_run="false"`):
			m.runs += v
		case name == "scimbridge_run_in_progress":
			m.runsInProgress = v
		case name == "scimbridge_lower_bound_writes_total":
			m.lowerBound = v
		case name == `scimbridge_source_reads_total{kind="full"}`:
			m.fullReads = v
		case name == `scimbridge_source_reads_total{kind="targeted"}`:
			m.targetedReads = v
		case strings.HasPrefix(name, "scimbridge_feed_state{") && strings.Contains(name, `state="watching"`):
			m.watching = v
		}
	}
	return m, sc.Err()
}

// waitWatching waits until serve's initial run ended and its feed is watching.
func (s *serveProc) waitWatching(ctx context.Context, limit time.Duration) error {
	return s.waitFor(ctx, limit, "serve's feed watching after its initial run", func(m serveMetrics) bool {
		return m.watching == 1 && m.runs >= 1 && m.runsInProgress == 0
	})
}

// waitIdle waits until no run is going on, twice in a row a batching window apart.
func (s *serveProc) waitIdle(ctx context.Context, limit time.Duration) error {
	idle := 0
	return s.waitFor(ctx, limit, "serve idle", func(m serveMetrics) bool {
		if m.runsInProgress == 0 {
			idle++
		} else {
			idle = 0
		}
		return idle >= 30 // 3 s at 100 ms
	})
}

func (s *serveProc) waitFor(ctx context.Context, limit time.Duration, what string, ok func(serveMetrics) bool) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("serve exited while waiting for %s: %v (see %s)", what, err, s.logf.Name())
		default:
		}
		if m, err := s.scrape(); err == nil && ok(m) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s (see %s)", what, s.logf.Name())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
