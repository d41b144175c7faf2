package google

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted answers each request with the next status of a script (then 200), recording bodies.
type scripted struct {
	mu      sync.Mutex
	script  []int
	headers map[string]string
	bodies  []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	status := http.StatusOK
	if len(s.script) > 0 {
		status, s.script = s.script[0], s.script[1:]
	}
	s.mu.Unlock()
	for k, v := range s.headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":{"errors":[{"reason":"backendError"}]}}`))
}

func testTransport(c Config) (*transport, *[]time.Duration) {
	c.RetryBackoff, c.MaxRetryBackoff = cmpDur(c.RetryBackoff, 100*time.Millisecond), cmpDur(c.MaxRetryBackoff, time.Second)
	tr := newTransport(http.DefaultTransport, c.withDefaults(), slog.New(slog.DiscardHandler))
	var slept []time.Duration
	var mu sync.Mutex
	tr.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return ctx.Err()
	}
	return tr, &slept
}

func cmpDur(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func TestTransportBackoffGrowsAndCaps(t *testing.T) {
	srv := &scripted{script: []int{503, 502, 500, 503, 504, 503}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tr, slept := testTransport(Config{MaxAttempts: 7})
	resp, err := (&http.Client{Transport: tr}).Get(ts.URL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("Get = %v, %v; want 200 after 6 retries", resp, err)
	}
	resp.Body.Close()
	bounds := []time.Duration{100, 200, 400, 800, 1000, 1000}
	if len(*slept) != len(bounds) {
		t.Fatalf("slept %v, want %d waits", *slept, len(bounds))
	}
	for i, d := range *slept {
		hi := bounds[i] * time.Millisecond
		if d < hi/2 || d > hi {
			t.Errorf("wait %d = %s, want in [%s, %s]", i+1, d, hi/2, hi)
		}
	}
	if n := tr.sem.held(tr.capacity); n != 0 {
		t.Errorf("%d concurrency slots still held", n)
	}
}

func TestTransportHonoursRetryAfter(t *testing.T) {
	srv := &scripted{script: []int{429}, headers: map[string]string{"Retry-After": "7"}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tr, slept := testTransport(Config{})
	resp, err := (&http.Client{Transport: tr}).Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(*slept) != 1 || (*slept)[0] != 7*time.Second {
		t.Errorf("slept %v, want [7s]", *slept)
	}
}

func TestTransportReplaysBody(t *testing.T) {
	srv := &scripted{script: []int{503}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tr, _ := testTransport(Config{})
	resp, err := (&http.Client{Transport: tr}).Post(ts.URL, "application/json", bytes.NewBufferString(`{"id":"c1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(srv.bodies) != 2 || srv.bodies[0] != `{"id":"c1"}` || srv.bodies[1] != srv.bodies[0] {
		t.Errorf("bodies = %q, want the same body twice", srv.bodies)
	}
}

func TestTransportReturnsLastFailure(t *testing.T) {
	srv := &scripted{script: []int{503, 503, 503}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tr, _ := testTransport(Config{MaxAttempts: 3})
	resp, err := (&http.Client{Transport: tr}).Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !bytes.Contains(b, []byte("backendError")) {
		t.Errorf("last answer = %d %s, want the 503 with its body", resp.StatusCode, b)
	}
	if got := tr.requests.Load(); got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
}

func TestTransportStopsWaitingWhenCancelled(t *testing.T) {
	srv := &scripted{script: []int{503, 503}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tr := newTransport(http.DefaultTransport, Config{MaxAttempts: 5, RetryBackoff: time.Hour, MaxRetryBackoff: time.Hour, Concurrency: 1}, slog.New(slog.DiscardHandler))
	// The cancel must come while the transport waits out its backoff, not while the first
	// request is in flight (which a poll of the request count could not tell apart): the real
	// sleep runs, and says when it has started.
	waiting := make(chan time.Duration, 1)
	tr.sleep = func(ctx context.Context, d time.Duration) error {
		waiting <- d
		return sleepCtx(ctx, d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
	done := make(chan error, 1)
	go func() {
		_, err := tr.RoundTrip(req)
		done <- err
	}()
	if d := <-waiting; d < 30*time.Minute {
		t.Errorf("backoff %s, want about an hour", d)
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting to retry") {
		t.Errorf("RoundTrip = %v, want context.Canceled from the wait to retry", err)
	}
	if got := tr.requests.Load(); got != 1 {
		t.Errorf("attempts = %d, want 1 (none after the cancel)", got)
	}
}

func TestTransportBoundsConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		inFlight.Add(-1)
	}))
	defer ts.Close()
	tr, _ := testTransport(Config{Concurrency: 3})
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			resp, err := client.Get(ts.URL)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 3 {
		t.Errorf("peak requests in flight = %d, want at most 3", p)
	}
}
