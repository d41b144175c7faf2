package google

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	admin "google.golang.org/api/admin/directory/v1"

	"github.com/scimbridge/scimbridge/connectors/google/googletest"
)

// manualTimers replaces the source's timers: each wait is handed to the test, which fires it.
type manualTimers struct{ waits chan timer }

type timer struct {
	d    time.Duration
	fire chan time.Time
}

func (m *manualTimers) after(d time.Duration) <-chan time.Time {
	t := timer{d: d, fire: make(chan time.Time, 1)}
	m.waits <- t
	return t.fire
}

func (m *manualTimers) next(t *testing.T) timer {
	t.Helper()
	select {
	case w := <-m.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("no renewal timer was set")
	}
	return timer{}
}

func channelIDs(f *googletest.Server) []string {
	var ids []string
	for _, c := range f.Channels() {
		ids = append(ids, c.Id)
	}
	slices.Sort(ids)
	return ids
}

func TestWatchVerifyRenewClose(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	e.fake.SetMaxChannelTTL(time.Hour)
	s := e.open(t, func(c *Config) {
		c.Watch = WatchConfig{Address: "https://hooks.example.com/google", Events: []string{"add", "update"}}
	})
	timers := &manualTimers{waits: make(chan timer, 4)}
	s.after = timers.after
	ctx := context.Background()
	if err := s.Watch(ctx); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	open := e.fake.Channels()
	if len(open) != 2 {
		t.Fatalf("open channels = %d, want 2", len(open))
	}
	events := map[string]admin.Channel{}
	for _, c := range open {
		events[c.Params["event"]] = c
		if c.Address != "https://hooks.example.com/google" || len(c.Token) < 40 {
			t.Errorf("channel %s: address %q, token of %d chars", c.Id, c.Address, len(c.Token))
		}
	}
	if events["add"].Token == events["update"].Token {
		t.Error("two channels share a token")
	}
	// Google granted one hour: renewal is due 15 minutes before it ends.
	pending := []timer{timers.next(t), timers.next(t)}
	for _, w := range pending {
		if w.d < 44*time.Minute || w.d > 45*time.Minute {
			t.Errorf("renewal wait = %s, want about 45m", w.d)
		}
	}

	upd := events["update"]
	alice := &admin.User{Id: "u1", PrimaryEmail: "alice@example.com"}
	h, body, err := e.fake.Notify(upd.Id, "update", alice, 7)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Verify(h, body)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := (Notification{ChannelID: upd.Id, State: "update", UserID: "u1", PrimaryEmail: "alice@example.com", MessageNumber: 7}); n != want {
		t.Errorf("notification = %+v, want %+v", n, want)
	}
	h, body, _ = e.fake.Notify(upd.Id, StateSync, nil, 1)
	if n, err := s.Verify(h, body); err != nil || n.State != StateSync || n.UserID != "" {
		t.Errorf("sync notification = %+v, %v", n, err)
	}

	bad := []struct {
		name string
		edit func(h http.Header) []byte
		want error
	}{
		{"wrong token", func(h http.Header) []byte { h.Set(HeaderChannelToken, events["add"].Token); return body }, ErrBadToken},
		{"no token", func(h http.Header) []byte { h.Del(HeaderChannelToken); return body }, ErrBadToken},
		{"unknown channel", func(h http.Header) []byte { h.Set(HeaderChannelID, "scimbridge-forged"); return body }, ErrUnknownChannel},
		{"no state", func(h http.Header) []byte { h.Del(HeaderResourceState); return body }, ErrBadNotification},
		{"no user in body", func(h http.Header) []byte { return []byte(`{"kind":"admin#directory#user"}`) }, ErrBadNotification},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := e.fake.Notify(upd.Id, "update", alice, 8)
			body := tc.edit(h)
			_, err := s.Verify(h, body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), upd.Token) {
				t.Errorf("error leaks the channel token: %v", err)
			}
		})
	}

	// Renew the update channel: a new one opens, then the old one stops.
	before := channelIDs(e.fake)
	// Fire both loops' timers, one at a time; a loop that sets its next timer is done.
	for _, w := range pending {
		w.fire <- time.Now()
		if next := timers.next(t); next.d < 44*time.Minute {
			t.Errorf("next renewal wait = %s", next.d)
		}
	}
	after := channelIDs(e.fake)
	if len(after) != 2 || slices.ContainsFunc(after, func(id string) bool { return slices.Contains(before, id) }) {
		t.Fatalf("channels before renewal %v, after %v: want two new ones", before, after)
	}
	if _, err := s.Verify(h, body); !errors.Is(err, ErrUnknownChannel) {
		t.Errorf("Verify on a replaced channel = %v, want ErrUnknownChannel", err)
	}
	for _, c := range e.fake.Channels() {
		h, body, _ := e.fake.Notify(c.Id, c.Params["event"], alice, 1)
		if _, err := s.Verify(h, body); err != nil {
			t.Errorf("Verify on renewed channel %s: %v", c.Id, err)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if ids := channelIDs(e.fake); len(ids) != 0 {
		t.Errorf("channels still open after Close: %v", ids)
	}
}

func TestWatchRenewalRetriesAfterFailure(t *testing.T) {
	e := newEnv(t)
	e.fake.SetMaxChannelTTL(time.Hour)
	s := e.open(t, func(c *Config) {
		c.MaxAttempts = 1
		c.Watch = WatchConfig{Address: "https://hooks.example.com/google", Events: []string{"delete"}}
	})
	timers := &manualTimers{waits: make(chan timer, 4)}
	s.after = timers.after
	if err := s.Watch(context.Background()); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	first := channelIDs(e.fake)
	e.fake.FailPage("/admin/directory/v1/users/watch", 1, 1, http.StatusServiceUnavailable, "backendError")
	timers.next(t).fire <- time.Now()
	retry := timers.next(t) // renewal failed: a short retry wait, well before expiry
	if retry.d >= 30*time.Minute {
		t.Errorf("retry wait after a failed renewal = %s", retry.d)
	}
	if got := channelIDs(e.fake); !slices.Equal(got, first) {
		t.Errorf("channels after a failed renewal = %v, want the old %v kept", got, first)
	}
	retry.fire <- time.Now()
	timers.next(t)
	if got := channelIDs(e.fake); len(got) != 1 || got[0] == first[0] {
		t.Errorf("channels after the retried renewal = %v (old %v)", got, first)
	}
}

func TestWatchNeedsAddress(t *testing.T) {
	e := newEnv(t)
	s := e.open(t, nil)
	if err := s.Watch(context.Background()); err == nil {
		t.Fatal("Watch without watch.address succeeded")
	}
}

func TestReadUser(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	s := e.open(t, func(c *Config) { c.Suspended = Omit; c.CustomSchemas = []string{"Employment"} })
	ctx := context.Background()
	u, err := s.ReadUser(ctx, "alice.a@example.com")
	if err != nil {
		t.Fatalf("ReadUser by alias: %v", err)
	}
	if u.ID != "u1" || u.Get("primaryEmail") != "alice@example.com" || u.Get("customSchemas.Employment.level") != "L5" {
		t.Errorf("ReadUser = %+v", u)
	}
	if _, err := s.ReadUser(ctx, "gone@example.com"); !errors.Is(err, ErrUserNotFound) {
		t.Errorf("ReadUser of a deleted user = %v, want ErrUserNotFound", err)
	}
	if _, err := s.ReadUser(ctx, "u3"); !errors.Is(err, ErrUserOutOfScope) {
		t.Errorf("ReadUser of a suspended user with omit = %v, want ErrUserOutOfScope", err)
	}
}
