package service

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors/google"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// forwarder records what a follower hands to the leader, or fails as a lost database would.
type forwarder struct {
	mu   sync.Mutex
	got  []reconcile.Request
	fail error
}

func (f *forwarder) forward(_ context.Context, req reconcile.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.got = append(f.got, req)
	return nil
}

func (f *forwarder) requests() []reconcile.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]reconcile.Request(nil), f.got...)
}

// TestFollowerServesAndForwards: with Forward set, a replica that is not the leader is a
// follower: ready ("ready: follower"), its page says so, and webhooks and the run form are
// accepted and handed to Forward, never to its own controller; a Forward that fails is answered
// 503. Once it leads, /readyz says "ready: leader" and requests reach the controller.
func TestFollowerServesAndForwards(t *testing.T) {
	flag := &standbyFlag{}
	flag.on.Store(true)
	fw := &forwarder{}
	f := newFixture(t, func(c *Config) { c.Standby, c.Google, c.Forward = flag.get, fakeGoogle{}, fw.forward })

	if rec := f.do("GET", "/readyz", "", nil); rec.Code != 200 || rec.Body.String() != "ready: follower\n" {
		t.Errorf("/readyz on a follower: got %d %q, want 200 %q", rec.Code, rec.Body.String(), "ready: follower\n")
	}
	page := f.do("GET", "/", "", nil).Body.String()
	if !strings.Contains(page, "follower (the leader replica runs the syncs") || strings.Contains(page, "standby (") {
		t.Errorf("the status page of a follower:\n%s", page)
	}

	body := `{"users":["u1"]}`
	if rec := f.do("POST", "/v1/sync", body, signed(testSecret, f.now, body)); rec.Code != 202 {
		t.Errorf("signed webhook on a follower: got %d %s, want 202", rec.Code, rec.Body)
	}
	if rec := f.do("POST", "/v1/sync", body, signed("wrong secret", f.now.Add(time.Second), body)); rec.Code != 401 {
		t.Errorf("badly signed webhook on a follower: got %d, want 401", rec.Code)
	}
	gh := http.Header{google.HeaderChannelID: {"chan-1"}, google.HeaderChannelToken: {"chan-token"}, google.HeaderResourceState: {"update"}}
	if rec := f.do("POST", "/v1/webhooks/google", `{"id":"1234"}`, gh); rec.Code != 202 {
		t.Errorf("google push on a follower: got %d %s, want 202", rec.Code, rec.Body)
	}
	_, cookie := f.login(t, testUIPass, nil)
	csrf := csrfRE.FindStringSubmatch(f.do("GET", "/", "", withCookie(cookie, nil)).Body.String())[1]
	form := url.Values{"csrf": {csrf}, "mode": {"dry-run"}}.Encode()
	if rec := f.do("POST", "/ui/run", form, withCookie(cookie, formHeader())); rec.Header().Get("Location") != "/?requested=dry-run" {
		t.Errorf("run form on a follower: got %d %s, want a redirect to /?requested=dry-run", rec.Code, rec.Header().Get("Location"))
	}
	want := []reconcile.Request{
		{Trigger: reconcile.TriggerWebhook, Only: reconcile.Selection{Users: []string{"u1"}}},
		{Trigger: "google", Only: reconcile.Selection{Users: []string{"1234"}}},
		{Trigger: "manual", DryRun: true},
	}
	if diff := cmp.Diff(want, fw.requests()); diff != "" {
		t.Errorf("requests forwarded (-want +got):\n%s", diff)
	}
	if n := len(f.ctrl.requests()); n != 0 {
		t.Errorf("%d requests reached the follower's own controller, want 0", n)
	}

	fw.mu.Lock()
	fw.fail = errors.New("connection refused")
	fw.mu.Unlock()
	body2 := `{"groups":["g1"]}`
	if rec := f.do("POST", "/v1/sync", body2, signed(testSecret, f.now.Add(2*time.Second), body2)); rec.Code != 503 {
		t.Errorf("webhook on a follower whose forward fails: got %d, want 503", rec.Code)
	}

	flag.on.Store(false)
	if rec := f.do("GET", "/readyz", "", nil); rec.Code != 200 || rec.Body.String() != "ready: leader\n" {
		t.Errorf("/readyz on the leader: got %d %q, want 200 %q", rec.Code, rec.Body.String(), "ready: leader\n")
	}
	if rec := f.do("POST", "/v1/sync", body2, signed(testSecret, f.now.Add(3*time.Second), body2)); rec.Code != 202 || len(f.ctrl.requests()) != 1 {
		t.Errorf("webhook on the leader: got %d and %d controller requests, want 202 and 1", rec.Code, len(f.ctrl.requests()))
	}
}
