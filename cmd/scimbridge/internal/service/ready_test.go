package service

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadyzCallerHangsUp: a /readyz caller that hangs up while the probes run does not cancel
// them, and its departure is not cached: the probe finishes on the service's own context and
// the next caller is ready without a new probe. Before, the probe ran on the caller's context,
// failed with "context canceled" and kept the pod unready for probe_cache.
func TestReadyzCallerHangsUp(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	var probeErr atomic.Value
	f := newFixture(t, func(c *Config) {
		c.ProbeCache = time.Hour
		c.Probes = []Probe{{Name: "target", Check: func(ctx context.Context) error {
			calls.Add(1)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				probeErr.Store(ctx.Err())
				return ctx.Err()
			}
		}}}
	})
	srv := httptest.NewServer(f.h)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/readyz", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the hung-up caller got an answer: %s", resp.Status)
	}
	time.Sleep(50 * time.Millisecond) // the server has seen the hang-up by now
	close(release)
	code, body := get(t, srv.URL+"/readyz")
	if code != 200 {
		t.Errorf("after a caller hung up: %d %q, want 200", code, body)
	}
	if err := probeErr.Load(); err != nil {
		t.Errorf("the probe's context was cancelled: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("probed %d times, want 1 (the outcome of the first probe is cached)", n)
	}
}

// TestReadyzShowsNoDetails: a failing probe's error (which may name the target's URL) goes to
// the log; the caller gets a status and a short reason.
func TestReadyzShowsNoDetails(t *testing.T) {
	const url = "https://scim.eu-west-1.amazonaws.com/k3y/scim/v2"
	f := newFixture(t, func(c *Config) {
		c.Probes = []Probe{
			{Name: "source", Check: func(context.Context) error { return errors.New("ldap: bind as cn=svc,dc=corp: invalid credentials") }},
			{Name: "target", Check: func(context.Context) error { return errors.New("Get " + url + "/Users: dial tcp: connection refused") }},
		}
	})
	rec := f.do("GET", "/readyz", "", nil)
	if got, want := rec.Body.String(), "not ready: source, target not reachable\n"; rec.Code != 503 || got != want {
		t.Errorf("/readyz: %d %q, want 503 %q", rec.Code, got, want)
	}
	logs := f.logs.String()
	for _, detail := range []string{url, "invalid credentials", "connection refused"} {
		if !strings.Contains(logs, detail) {
			t.Errorf("the log lacks %q:\n%s", detail, logs)
		}
	}
	// The same answer again is not logged again.
	before := strings.Count(logs, `msg="not ready"`)
	f.do("GET", "/readyz", "", nil)
	if after := strings.Count(f.logs.String(), `msg="not ready"`); after != before {
		t.Errorf("an unchanged answer was logged again (%d lines, was %d)", after, before)
	}
}

// TestReadyzOneProbeForManyCallers: callers that arrive while a probe runs share it.
func TestReadyzOneProbeForManyCallers(t *testing.T) {
	release := make(chan struct{})
	var calls, arrived atomic.Int32
	f := newFixture(t, func(c *Config) {
		// No cache: only sharing the probe going on keeps it to one.
		c.ProbeCache = 0
		c.Probes = []Probe{{Name: "target", Check: func(context.Context) error {
			calls.Add(1)
			<-release
			return nil
		}}}
		// Ready asks Standby first: it tells when every caller has arrived.
		c.Standby = func() (bool, string) { arrived.Add(1); return false, "" }
	})
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() { codes[i] = f.do("GET", "/readyz", "", nil).Code })
	}
	waitFor(t, "8 callers", func() bool { return arrived.Load() == 8 })
	time.Sleep(50 * time.Millisecond) // from Standby to joining the probe takes no wait
	close(release)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("caller %d: got %d, want 200", i, c)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("8 callers at once probed %d times, want 1", n)
	}
}

// TestReadyzServiceStopNotCached: a probe the service interrupts (Close) is not cached.
func TestReadyzServiceStopNotCached(t *testing.T) {
	var calls atomic.Int32
	f := newFixture(t, func(c *Config) {
		c.ProbeCache = time.Hour
		c.Probes = []Probe{{Name: "target", Check: func(ctx context.Context) error {
			calls.Add(1)
			<-ctx.Done()
			return ctx.Err()
		}}}
	})
	go func() { time.Sleep(50 * time.Millisecond); f.srv.Close() }()
	rec := f.do("GET", "/readyz", "", nil)
	if rec.Code != 503 || rec.Body.String() != "not ready: probe interrupted\n" {
		t.Errorf("/readyz while the service stops: got %d %q, want 503 %q", rec.Code, rec.Body.String(), "not ready: probe interrupted\n")
	}
	f.srv.probeMu.Lock()
	cached := !f.srv.probedAt.IsZero()
	f.srv.probeMu.Unlock()
	if cached {
		t.Error("the interrupted probe was cached")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
