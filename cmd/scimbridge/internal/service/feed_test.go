package service

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors/google"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// feedState is a feed whose status the test sets.
type feedState struct{ st reconcile.FeedStatus }

func (f *feedState) Status() reconcile.FeedStatus { return f.st }

// TestFeedOnStatusPageAndMetrics: the status page shows the change feed's state, last batch,
// cursor age and fallbacks (its error only when signed in), and /metrics exports them with the
// change-to-apply latency.
func TestFeedOnStatusPageAndMetrics(t *testing.T) {
	feed := &feedState{}
	var metrics *Metrics
	f := newFixture(t, func(c *Config) {
		c.Feed = feed
		metrics = NewMetrics()
		c.Metrics = metrics
	})
	metrics.AddFeed(feed)
	feed.st = reconcile.FeedStatus{Source: "ldap", State: reconcile.FeedFailed, LastError: "ldap: dial ldaps://dc1.corp.example:636: refused",
		LastBatch: f.now.Add(-time.Minute), LastBatchChanges: 3, Behind: f.now.Add(-90 * time.Second),
		Fallbacks: 2, LastFallback: "cursor no longer accepted", Restarts: 4}

	body := f.do("GET", "/", "", nil).Body.String()
	for _, want := range []string{`id="feed-state" class="feed-failed">failed</span>`, "(3 changes)", `id="feed-cursor-age">1m30s`,
		"2 (last: cursor no longer accepted); feed restarted 4 times"} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "dc1.corp.example") {
		t.Error("the feed's error is shown to a reader who has not signed in")
	}
	_, cookie := f.login(t, testUIPass, nil)
	if body := f.do("GET", "/", "", withCookie(cookie, nil)).Body.String(); !strings.Contains(body, "failed: ldap: dial ldaps://dc1.corp.example:636: refused") {
		t.Errorf("signed-in status page lacks the feed's error:\n%s", body)
	}

	metrics.ObserveChangeLatency("ldap", 1500*time.Millisecond)
	metrics.ObserveChangeLatency("ldap", 3*time.Second)
	text := f.do("GET", "/metrics", "", nil).Body.String()
	for _, want := range []string{
		`scimbridge_change_to_apply_seconds_count{source="ldap"} 2`,
		`scimbridge_change_to_apply_seconds_sum{source="ldap"} 4.5`,
		`scimbridge_feed_state{source="ldap",state="failed"} 1`,
		`scimbridge_feed_state{source="ldap",state="watching"} 0`,
		`scimbridge_feed_fallbacks_total{source="ldap"} 2`,
		`scimbridge_feed_restarts_total{source="ldap"} 4`,
		`scimbridge_feed_cursor_age_seconds{source="ldap"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestGoogleWebhookWithFeed: with a change feed, a Google push asks for the user to be read
// alone (Changes), not for a targeted run that reads the whole directory (Only).
func TestGoogleWebhookWithFeed(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Google, c.Feed = fakeGoogle{}, &feedState{} })
	h := http.Header{google.HeaderChannelID: {"chan-1"}, google.HeaderChannelToken: {"chan-token"}, google.HeaderResourceState: {"update"}}
	if rec := f.do("POST", "/v1/webhooks/google", `{"id":"1234"}`, h); rec.Code != 202 {
		t.Fatalf("status %d, want 202", rec.Code)
	}
	got := f.ctrl.requests()
	if len(got) != 1 || got[0].Changes == nil || !got[0].Only.Empty() {
		t.Fatalf("requests %+v, want one with Changes and no Only", got)
	}
	if diff := cmp.Diff(*got[0].Changes, reconcile.Changes{Users: []string{"1234"}}); diff != "" {
		t.Errorf("changes (-got +want):\n%s", diff)
	}
}
