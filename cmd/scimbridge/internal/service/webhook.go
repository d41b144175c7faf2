package service

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/scimbridge/scimbridge/connectors/google"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// Headers of a signed POST /v1/sync.
const (
	// HeaderTimestamp carries the Unix time (seconds) the request was signed at.
	HeaderTimestamp = "X-Scimbridge-Timestamp"
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of timestamp + "." + body.
	HeaderSignature = "X-Scimbridge-Signature"
)

// Sign returns the X-Scimbridge-Signature value for a body sent at ts with the shared secret:
// "sha256=" + hex(HMAC-SHA256(secret, "<unix seconds>." + body)).
func Sign(secret []byte, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Why a webhook request was refused; they name no secret.
var (
	errNoAuth       = errors.New("no signature or bearer token")
	errNotEnabled   = errors.New("no webhook_secret or bearer_token is configured")
	errBadSignature = errors.New("signature does not match")
	errBadTimestamp = errors.New("timestamp missing or not a Unix time")
	errStale        = errors.New("timestamp outside the replay window")
	errReplay       = errors.New("signature already used (replay)")
	errBadToken     = errors.New("bearer token does not match")
	errCacheFull    = errors.New("replay cache full")
)

// replayCache remembers signatures seen within the replay window.
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time // signature -> when it may be forgotten
	max  int
}

func newReplayCache(max int) *replayCache {
	return &replayCache{seen: map[string]time.Time{}, max: max}
}

// add records sig until expires; it reports errReplay for a signature seen before.
func (c *replayCache) add(sig string, now, expires time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[sig]; ok && now.Before(exp) {
		return errReplay
	}
	if len(c.seen) >= c.max {
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			return errCacheFull
		}
	}
	c.seen[sig] = expires
	return nil
}

// authenticate checks a POST /v1/sync: an HMAC signature when one is sent, else a bearer token.
func (s *Server) authenticate(r *http.Request, body []byte) error {
	if len(s.cfg.WebhookSecret) == 0 && !s.bearer.set() {
		return errNotEnabled
	}
	if sig := r.Header.Get(HeaderSignature); sig != "" {
		if len(s.cfg.WebhookSecret) == 0 {
			return errBadSignature
		}
		ts, err := strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
		if err != nil {
			return errBadTimestamp
		}
		at, now := time.Unix(ts, 0), s.now()
		if d := now.Sub(at); d > s.cfg.ReplayWindow || d < -s.cfg.ReplayWindow {
			return errStale
		}
		want := Sign(s.cfg.WebhookSecret, at, body)
		if !hmac.Equal([]byte(sig), []byte(want)) {
			return errBadSignature
		}
		// Kept until the timestamp leaves the window: a replay after that is stale.
		return s.replay.add(sig, now, at.Add(s.cfg.ReplayWindow+time.Second))
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || !s.bearer.equal([]byte(tok)) {
			return errBadToken
		}
		return nil
	}
	return errNoAuth
}

// readBody reads a webhook body up to the limit; it answers 413 and returns false when over.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, endpoint string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.refuse(w, r, endpoint, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", s.cfg.MaxBodyBytes))
		return nil, false
	case err != nil:
		s.refuse(w, r, endpoint, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		return nil, false
	}
	return body, true
}

// SyncRequest is the optional JSON body of POST /v1/sync: users and groups (source ids) for a
// targeted sync, or nothing (no body, or {}) for a full one. A body that names users or groups
// must name at least one id, and no id may be blank: `{"users":[]}` is refused rather than read
// as "everything". Nothing may follow the JSON value.
type SyncRequest struct {
	Users  []string `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
	DryRun bool     `json:"dry_run,omitempty"`
}

// maxSelection bounds the ids one request may name.
const maxSelection = 1000

// parseSyncRequest decodes and checks a POST /v1/sync body.
func parseSyncRequest(body []byte) (SyncRequest, error) {
	var req SyncRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	if !utf8.Valid(body) {
		// encoding/json would turn the bad bytes into U+FFFD: an id nobody sent.
		return req, errors.New("body: not valid UTF-8")
	}
	var raw struct {
		Users  json.RawMessage `json:"users"`
		Groups json.RawMessage `json:"groups"`
		DryRun bool            `json:"dry_run"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return req, fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, fmt.Errorf("body: data after the JSON value at offset %d", dec.InputOffset())
	}
	req.DryRun = raw.DryRun
	var errs []error
	named := false
	for _, f := range []struct {
		key string
		raw json.RawMessage
		ids *[]string
	}{{"users", raw.Users, &req.Users}, {"groups", raw.Groups, &req.Groups}} {
		if f.raw == nil {
			continue
		}
		named = true
		if string(f.raw) == "null" {
			errs = append(errs, fmt.Errorf("body: %s is null; name ids or leave the key out", f.key))
			continue
		}
		if err := json.Unmarshal(f.raw, f.ids); err != nil {
			errs = append(errs, fmt.Errorf("body: %s: %w", f.key, err))
			continue
		}
		for i, id := range *f.ids {
			if strings.TrimSpace(id) == "" {
				errs = append(errs, fmt.Errorf("body: %s[%d] is blank or null", f.key, i))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return SyncRequest{}, err
	}
	if named && len(req.Users)+len(req.Groups) == 0 {
		return SyncRequest{}, errors.New("body: names an empty selection; send no body (or {}) for a full sync")
	}
	if n := len(req.Users) + len(req.Groups); n > maxSelection {
		return SyncRequest{}, fmt.Errorf("body names %d objects, more than %d", n, maxSelection)
	}
	return req, nil
}

func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	const endpoint = "sync"
	if s.throttled(w, r, endpoint) {
		return
	}
	body, ok := s.readBody(w, r, endpoint)
	if !ok {
		return
	}
	if err := s.authenticate(r, body); err != nil {
		code := http.StatusUnauthorized
		if errors.Is(err, errCacheFull) {
			code = http.StatusServiceUnavailable
		}
		s.refuse(w, r, endpoint, code, err)
		return
	}
	if s.refuseStandby(w, r, endpoint) {
		return
	}
	req, err := parseSyncRequest(body)
	if err != nil {
		s.refuse(w, r, endpoint, http.StatusBadRequest, err)
		return
	}
	sel := reconcile.Selection{}.Merge(reconcile.Selection{Users: req.Users, Groups: req.Groups})
	if err := s.request(r.Context(), reconcile.Request{Trigger: reconcile.TriggerWebhook, DryRun: req.DryRun, Only: sel}); err != nil {
		s.refuse(w, r, endpoint, http.StatusServiceUnavailable, fmt.Errorf("record the request for the leader: %w", err))
		return
	}
	s.log.Info("sync requested", "endpoint", endpoint, "remote", r.RemoteAddr, "only", sel.String(), "dry_run", req.DryRun)
	s.accepted(w, endpoint, map[string]any{"accepted": true, "only": sel, "dry_run": req.DryRun})
}

// GoogleVerifier checks Google Directory push notifications; the Google source implements it
// (google.Watcher).
type GoogleVerifier interface {
	Verify(header http.Header, body []byte) (google.Notification, error)
}

func (s *Server) handleGoogle(w http.ResponseWriter, r *http.Request) {
	const endpoint = "google"
	if s.cfg.Google == nil {
		s.refuse(w, r, endpoint, http.StatusNotFound, errors.New("the source does not watch Google push channels"))
		return
	}
	if s.throttled(w, r, endpoint) {
		return
	}
	body, ok := s.readBody(w, r, endpoint)
	if !ok {
		return
	}
	n, err := s.cfg.Google.Verify(r.Header, body)
	switch {
	case errors.Is(err, google.ErrUnknownChannel), errors.Is(err, google.ErrBadToken):
		s.refuse(w, r, endpoint, http.StatusUnauthorized, err)
		return
	case err != nil:
		s.refuse(w, r, endpoint, http.StatusBadRequest, err)
		return
	}
	if s.refuseStandby(w, r, endpoint) {
		return
	}
	if n.State == google.StateSync || n.UserID == "" {
		s.log.Info("google push channel confirmed", "channel_id", n.ChannelID)
		s.accepted(w, endpoint, map[string]any{"accepted": true, "state": n.State})
		return
	}
	sel := reconcile.Selection{Users: []string{n.UserID}}
	req := reconcile.Request{Trigger: "google", Only: sel}
	if s.cfg.Feed != nil {
		// With a change feed the user is read alone, like the feed's own changes (the source
		// hands the push to its feed too; the two coalesce).
		req = reconcile.Request{Trigger: "google", Changes: &reconcile.Changes{Users: sel.Users}, Window: time.Millisecond}
	}
	if err := s.request(r.Context(), req); err != nil {
		s.refuse(w, r, endpoint, http.StatusServiceUnavailable, fmt.Errorf("record the request for the leader: %w", err))
		return
	}
	s.log.Info("sync requested", "endpoint", endpoint, "channel_id", n.ChannelID, "state", n.State, "only", sel.String())
	s.accepted(w, endpoint, map[string]any{"accepted": true, "state": n.State, "only": sel})
}

// refuse answers an error and logs why, without any secret or the body. A 401 counts as a
// failed authentication of the client's address.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, endpoint string, code int, why error) {
	s.cfg.Metrics.webhook(endpoint, code)
	attrs := []any{"endpoint", endpoint, "status", code, "remote", r.RemoteAddr, "reason", why.Error()}
	if code == http.StatusUnauthorized {
		attrs = append(attrs, "attempts_left", s.throttle.fail(clientAddr(r), s.now()))
	}
	level := s.log.Warn
	if code == http.StatusNotFound {
		level = s.log.Info
	}
	level("webhook refused", attrs...)
	writeJSON(w, code, map[string]any{"error": http.StatusText(code)})
}

// throttled answers 429 when the client's address has used up its failed authentications, and
// reports whether it did. The first refusal of a spell is logged at warn level, the rest at
// debug level, so that a guessing client cannot flood the log.
func (s *Server) throttled(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	addr := clientAddr(r)
	wait, first := s.throttle.wait(addr, s.now())
	if wait <= 0 {
		return false
	}
	s.cfg.Metrics.webhook(endpoint, http.StatusTooManyRequests)
	level := s.log.Debug
	if first {
		level = s.log.Warn
	}
	level("authentication throttled: too many failed attempts from this address", "endpoint", endpoint,
		"remote", r.RemoteAddr, "client", addr, "retry_after", wait.String())
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": http.StatusText(http.StatusTooManyRequests)})
	return true
}

func (s *Server) accepted(w http.ResponseWriter, endpoint string, v any) {
	s.cfg.Metrics.webhook(endpoint, http.StatusAccepted)
	writeJSON(w, http.StatusAccepted, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
