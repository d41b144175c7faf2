package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim/client"
)

// closedAddr returns the URL of a loopback port that nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestRefusedConnectionFailsFast: at the start of a run (no answer from the target yet) a refused
// connection is retried once and the error says where to look; once the target has answered, a
// refusal (a restart in the middle of a run) gets the whole retry policy.
func TestRefusedConnectionFailsFast(t *testing.T) {
	ctx := context.Background()
	t.Run("nothing listens", func(t *testing.T) {
		rec := &recorder{}
		c := newClient(t, closedAddr(t), "tok", func(cfg *client.Config) {
			cfg.Observer = rec
			cfg.Retry = client.RetryPolicy{MaxAttempts: 8, BaseDelay: 50 * time.Millisecond, MaxDelay: time.Second}
			cfg.UnreachableHint = "check target.scim_url"
		})
		start := time.Now()
		_, err := c.ReadState(ctx)
		took := time.Since(start)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("got %v, want a refused connection", err)
		}
		if got := len(rec.calls); got != 2 {
			t.Errorf("got %d attempts (%v), want 2: one retry", got, rec.calls)
		}
		if took > 2*time.Second {
			t.Errorf("took %v, want well under the retry policy's seconds", took)
		}
		if !strings.Contains(err.Error(), "check target.scim_url") {
			t.Errorf("got %q, want it to name target.scim_url", err)
		}
	})
	t.Run("refused after the target answered", func(t *testing.T) {
		f, srv := newFake(t)
		rec := &recorder{}
		// A listener of our own, so that it can be closed while the client keeps the address.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: f}
		go func() { _ = hs.Serve(ln) }()
		srv.Close()
		c := newClient(t, "http://"+ln.Addr().String(), f.token, func(cfg *client.Config) {
			cfg.Observer = rec
			cfg.Retry = client.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
		})
		if _, err := c.FindUser(ctx, "userName", "ann"); err != nil {
			t.Fatalf("first request: %v", err)
		}
		hs.Close()
		_, err = c.FindUser(ctx, "userName", "ann")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("got %v, want a refused connection", err)
		}
		if got := len(rec.calls); got != 1+4 {
			t.Errorf("got %d attempts (%v), want 1 + 4: the whole policy mid-run", got, rec.calls)
		}
	})
}

// TestAuthFailuresNameTheToken: a 401 or 403 says that the token was refused and where it is
// configured, without the token, and is not retried.
func TestAuthFailuresNameTheToken(t *testing.T) {
	ctx := context.Background()
	for _, status := range []int{401, 403} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			awsError(w, status, "denied")
		}))
		t.Cleanup(srv.Close)
		rec := &recorder{}
		c := newClient(t, srv.URL, "s3cr3t-token-value", func(cfg *client.Config) {
			cfg.Observer = rec
			cfg.AuthHint = "check target.token (or target.token_file)"
		})
		_, err := c.ReadState(ctx)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != status {
			t.Fatalf("got %v, want an APIError with status %d", err, status)
		}
		msg := err.Error()
		if !strings.Contains(msg, "target.token") || !strings.Contains(msg, "did not accept the token") {
			t.Errorf("got %q, want it to say the token was refused and name target.token", msg)
		}
		if strings.Contains(msg, "s3cr3t") {
			t.Errorf("got %q, which holds the token", msg)
		}
		if len(rec.calls) != 1 {
			t.Errorf("got %d attempts, want 1 (no retry of %d)", len(rec.calls), status)
		}
	}
	// Without a configured hint the message still points at the token.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { awsError(w, 401, "no") }))
	t.Cleanup(srv.Close)
	_, err := newClient(t, srv.URL, "x", nil).FindUser(ctx, "userName", "a")
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("got %v, want a hint about the token", err)
	}
}
