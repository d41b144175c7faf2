package google

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/googleapi"

	"github.com/scimbridge/scimbridge/connectors"
)

// Watcher is implemented by the source Open returns: Users.Watch push channels for the
// service's webhook, and the targeted read a notification calls for. Get it with a type
// assertion: w, ok := src.(google.Watcher).
type Watcher interface {
	// Watch opens one channel per configured event and keeps renewing each before it expires
	// until the source is closed (Close stops them). It returns once every channel is open, or
	// with the first error (channels opened so far stay open and are stopped on Close).
	Watch(ctx context.Context) error
	// Verify checks one webhook callback (its headers and body) and returns what it announces.
	// The errors wrap ErrUnknownChannel, ErrBadToken or ErrBadNotification; answer them 403 or
	// 400 and do nothing. A "sync" notification only confirms a new channel. A verified user
	// notification is also handed to the change feed watching (see Feed), if any.
	Verify(header http.Header, body []byte) (Notification, error)
	// ReadUser reads one user (by id or email) for a targeted sync. It returns ErrUserNotFound
	// for a deleted user, ErrUserOutOfScope for one the config leaves out (suspended or
	// archived with "omit").
	ReadUser(ctx context.Context, userKey string) (connectors.Entry, error)
}

// Errors of Verify and ReadUser.
var (
	ErrUnknownChannel  = errors.New("google: unknown push channel")
	ErrBadToken        = errors.New("google: push channel token mismatch")
	ErrBadNotification = errors.New("google: malformed push notification")
	ErrUserNotFound    = errors.New("google: user not found")
	ErrUserOutOfScope  = errors.New("google: user out of scope")
)

// Push notification headers Google sends.
const (
	HeaderChannelID     = "X-Goog-Channel-ID"
	HeaderChannelToken  = "X-Goog-Channel-Token"
	HeaderResourceState = "X-Goog-Resource-State"
	HeaderMessageNumber = "X-Goog-Message-Number"
)

// StateSync is the resource state of the first callback of a new channel.
const StateSync = "sync"

// Notification is a verified push callback.
type Notification struct {
	// ChannelID is the channel that delivered it.
	ChannelID string `json:"channel_id"`
	// State is "sync" for a new channel, else the user event: add, delete, update, undelete,
	// makeAdmin.
	State string `json:"state"`
	// UserID and PrimaryEmail name the affected user (empty for sync).
	UserID       string `json:"user_id,omitempty"`
	PrimaryEmail string `json:"primary_email,omitempty"`
	// MessageNumber is Google's per-channel sequence number.
	MessageNumber int64 `json:"message_number,omitempty"`
}

// channel is one open push channel.
type channel struct {
	id, token, resourceID, event string
	expires                      time.Time
}

// Watch implements Watcher.
func (s *source) Watch(ctx context.Context) error {
	if !s.cfg.Watch.Enabled() {
		return errors.New("google: watch: watch.address is not configured")
	}
	s.watchMu.Lock()
	if s.life.Err() != nil {
		s.watchMu.Unlock()
		return errors.New("google: watch: source closed")
	}
	if s.watching {
		s.watchMu.Unlock()
		return errors.New("google: watch: already watching")
	}
	s.watching = true
	s.watchMu.Unlock()
	for _, ev := range s.cfg.Watch.Events {
		ch, err := s.openChannel(ctx, ev)
		if err != nil {
			return err
		}
		s.wg.Go(func() { s.renewLoop(ch) })
	}
	return nil
}

// openChannel opens a Users.Watch channel for one event with a fresh id and random token.
func (s *source) openChannel(ctx context.Context, event string) (*channel, error) {
	id, err := randomString(16)
	if err != nil {
		return nil, err
	}
	token, err := randomString(32)
	if err != nil {
		return nil, err
	}
	req := &admin.Channel{
		Id:         "scimbridge-" + id,
		Type:       "web_hook",
		Address:    s.cfg.Watch.Address,
		Token:      token,
		Expiration: s.now().Add(s.cfg.Watch.TTL).UnixMilli(),
	}
	call := s.svc.Users.Watch(req).Event(event).Context(ctx)
	if param, value := s.scope(); param == "domain" {
		call.Domain(value)
	} else {
		call.Customer(value)
	}
	got, err := call.Do()
	if err != nil {
		return nil, fmt.Errorf("google: watch users (event %s): %w", event, err)
	}
	ch := &channel{id: req.Id, token: token, resourceID: got.ResourceId, event: event,
		expires: s.now().Add(s.cfg.Watch.TTL)}
	if got.Expiration > 0 {
		ch.expires = time.UnixMilli(got.Expiration)
	}
	s.watchMu.Lock()
	closed := !s.watching
	if !closed {
		s.channels[ch.id] = ch
	}
	s.watchMu.Unlock()
	if closed { // closed meanwhile: do not leave it open
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.stopChannel(stopCtx, ch); err != nil {
			s.logger.Warn("google push channel not stopped", "channel_id", ch.id, "err", err)
		}
		return nil, fmt.Errorf("google: watch users (event %s): source closed", event)
	}
	s.logger.Info("google push channel opened", "channel_id", ch.id, "event", event, "expires", ch.expires)
	return ch, nil
}

// renewLoop replaces ch before it expires (the new channel first, then the old one is
// stopped, so no event falls in between), over and over until the source closes. A failed
// renewal is retried after a backoff until the channel has expired.
func (s *source) renewLoop(ch *channel) {
	failures := 0
	for {
		wait := ch.expires.Sub(s.now()) - s.cfg.Watch.RenewBefore
		if failures > 0 {
			wait = min(time.Duration(failures)*s.cfg.RetryBackoff*4, max(ch.expires.Sub(s.now())/2, 0))
		}
		select {
		case <-s.life.Done():
			return
		case <-s.after(max(wait, 0)):
		}
		next, err := s.openChannel(s.life, ch.event)
		if err != nil {
			if s.life.Err() != nil {
				return
			}
			failures++
			s.logger.Error("google push channel renewal failed", "channel_id", ch.id, "event", ch.event, "failures", failures, "err", err)
			continue
		}
		failures = 0
		s.watchMu.Lock()
		delete(s.channels, ch.id)
		s.watchMu.Unlock()
		if err := s.stopChannel(s.life, ch); err != nil {
			s.logger.Warn("google push channel not stopped", "channel_id", ch.id, "err", err)
		}
		ch = next
	}
}

// stopChannel stops a channel; one Google no longer knows (404) counts as stopped.
func (s *source) stopChannel(ctx context.Context, ch *channel) error {
	err := s.svc.Channels.Stop(&admin.Channel{Id: ch.id, ResourceId: ch.resourceID}).Context(ctx).Do()
	var ge *googleapi.Error
	if err != nil && !(errors.As(err, &ge) && ge.Code == http.StatusNotFound) {
		return fmt.Errorf("google: stop push channel %s: %w", ch.id, err)
	}
	s.logger.Info("google push channel stopped", "channel_id", ch.id, "event", ch.event)
	return nil
}

// Verify implements Watcher. The token is compared in constant time; neither it nor the
// body appears in errors.
func (s *source) Verify(header http.Header, body []byte) (Notification, error) {
	id := header.Get(HeaderChannelID)
	s.watchMu.Lock()
	ch := s.channels[id]
	s.watchMu.Unlock()
	if ch == nil {
		return Notification{}, fmt.Errorf("%w: %q", ErrUnknownChannel, id)
	}
	if subtle.ConstantTimeCompare([]byte(header.Get(HeaderChannelToken)), []byte(ch.token)) != 1 {
		return Notification{}, fmt.Errorf("%w: channel %s", ErrBadToken, id)
	}
	n := Notification{ChannelID: id, State: header.Get(HeaderResourceState)}
	if v := header.Get(HeaderMessageNumber); v != "" {
		n.MessageNumber, _ = strconv.ParseInt(v, 10, 64)
	}
	switch n.State {
	case StateSync:
		return n, nil
	case "":
		return Notification{}, fmt.Errorf("%w: channel %s: no %s", ErrBadNotification, id, HeaderResourceState)
	}
	var u struct {
		Kind         string `json:"kind"`
		ID           string `json:"id"`
		PrimaryEmail string `json:"primaryEmail"`
	}
	if err := json.Unmarshal(body, &u); err != nil || u.ID == "" {
		return Notification{}, fmt.Errorf("%w: channel %s: state %s: body does not name a user", ErrBadNotification, id, n.State)
	}
	n.UserID, n.PrimaryEmail = u.ID, u.PrimaryEmail
	s.pushToFeed(n)
	return n, nil
}

// ReadUser implements Watcher with one Users.Get.
func (s *source) ReadUser(ctx context.Context, userKey string) (connectors.Entry, error) {
	fields := userFields
	call := s.svc.Users.Get(userKey).Context(ctx)
	if len(s.cfg.CustomSchemas) > 0 {
		call.Projection("custom").CustomFieldMask(strings.Join(s.cfg.CustomSchemas, ","))
		fields += ",customSchemas"
	}
	u, err := call.Fields(googleapi.Field(fields)).Do()
	if err != nil {
		if isNotFound(err) {
			return connectors.Entry{}, fmt.Errorf("%w: %s", ErrUserNotFound, userKey)
		}
		return connectors.Entry{}, fmt.Errorf("google: get user %s: %w", userKey, err)
	}
	if (u.Suspended && s.cfg.Suspended == Omit) || (u.Archived && s.cfg.Archived == Omit) {
		return connectors.Entry{}, fmt.Errorf("%w: %s", ErrUserOutOfScope, userKey)
	}
	return userEntry(u)
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("google: random channel id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
