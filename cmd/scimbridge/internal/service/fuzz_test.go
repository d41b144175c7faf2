package service

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzSyncWebhook sends validly signed and unsigned random payloads to POST /v1/sync: the handler
// answers 202 or a 4xx, never a 5xx or a panic, accepts only what is signed, and a request it
// accepts names only the users and groups the body named, and a body that names users or groups
// is never taken for a full sync.
func FuzzSyncWebhook(f *testing.F) {
	for _, s := range []string{"", "{}", `{"users":["u1"],"groups":["g1"]}`, `{"dry_run":true}`, `{"users":"x"}`,
		`{"users":["` + strings.Repeat("a", 600) + `"]}`, "[", `{"users":[null]}`, `{"extra":1}`,
		`{"users":[]}`, `{"users":["u1"]} x`, `{"Groups":[" "]}`, `{"users":["u1"]}{}`, `{"u\u0073ers":[]}`} {
		f.Add(s, true)
		f.Add(s, false)
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, body string, sign bool) {
		h := http.Header{}
		if sign {
			h = signed(testSecret, fx.now, body)
		}
		before := len(fx.ctrl.requests())
		rec := fx.do(http.MethodPost, "/v1/sync", body, h)
		switch {
		case rec.Code >= 500:
			t.Fatalf("status %d for %q", rec.Code, body)
		case rec.Code == http.StatusAccepted && !sign:
			t.Fatalf("an unsigned request was accepted: %q", body)
		case rec.Code == http.StatusAccepted:
			reqs := fx.ctrl.requests()
			if len(reqs) != before+1 {
				t.Fatalf("accepted without a request to the controller")
			}
			only := reqs[len(reqs)-1].Only
			lower := strings.ToLower(body)
			if only.Empty() && (strings.Contains(lower, `"users"`) || strings.Contains(lower, `"groups"`)) {
				t.Fatalf("a body naming users or groups was taken for a full sync: %q", body)
			}
			for _, id := range append(only.Users, only.Groups...) {
				if !strings.Contains(body, id) && id != "" {
					t.Fatalf("request names %q, which the body does not", id)
				}
			}
		}
		fx.now = fx.now.Add(time.Second) // a new timestamp, so that no request is a replay
	})
}
