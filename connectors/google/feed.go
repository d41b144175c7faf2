package google

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	reports "google.golang.org/api/admin/reports/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/scimbridge/scimbridge/connectors"
)

// The admin audit events the feed acts on (Reports API, application "admin").
const (
	typeGroupSettings = "GROUP_SETTINGS"
	typeUserSettings  = "USER_SETTINGS"
	paramGroupEmail   = "GROUP_EMAIL"
	paramUserEmail    = "USER_EMAIL"
	paramNewValue     = "NEW_VALUE"
)

// Events whose NEW_VALUE is the entry's new email, and the deletions.
var (
	emailChanges = map[string]bool{"CHANGE_GROUP_EMAIL": true, "RENAME_USER": true}
	deletions    = map[string]bool{"DELETE_GROUP": true, "DELETE_USER": true}
)

// ignoredUserEvent reports whether a USER_SETTINGS event changes nothing the sync reads
// (passwords, 2-step verification, sign-in challenges, devices, downloads).
func ignoredUserEvent(name string) bool {
	for _, w := range []string{"PASSWORD", "2SV", "SCRATCH", "SECURITY_KEY", "LOGIN", "COOKIE", "DEVICE",
		"TOKEN", "RECOVERY", "DOWNLOAD", "VIEW_", "TURN_OFF", "TURN_ON", "ENFORCE"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// pushBuffer bounds the pushed user changes waiting for the feed's next batch.
const pushBuffer = 4096

// cursorEvery is how often a feed with nothing to deliver still hands over its cursor.
const cursorEvery = 5 * time.Minute

// maxPollFailures is how many polls in a row may fail before Watch gives up.
const maxPollFailures = 3

// feed is the Google change feed: admin audit events of the Reports API, polled with an
// overlap, and the users Google pushes through Users.Watch (handed over by Verify).
type feed struct {
	s      *source
	svc    *reports.Service
	cfg    FeedConfig
	logger *slog.Logger
	now    func() time.Time
	after  func(time.Duration) <-chan time.Time

	pushes   chan connectors.Change
	mu       sync.Mutex
	overflow bool
	watching bool
}

var _ connectors.Feed = (*feed)(nil)

// Feed implements connectors.FeedSource. It opens a Reports API client with FeedScopes and
// checks, with one small request, that the admin audit log can be read: an error names what
// is missing (the Admin SDK API, or the admin.reports.audit.readonly scope in the domain-wide
// delegation, or an admin without the Reports privilege).
func (s *source) Feed(ctx context.Context) (connectors.Feed, error) {
	ts, _, err := tokenSource(s.life, s.cfg, s.base, FeedScopes)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &oauth2.Transport{Source: ts, Base: s.tr}}
	svc, err := reports.NewService(s.life, option.WithHTTPClient(hc), option.WithEndpoint(s.cfg.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("google: reports client: %w", err)
	}
	f := &feed{s: s, svc: svc, cfg: s.cfg.Feed, logger: s.logger.With("component", "feed"),
		now: s.now, after: time.After, pushes: make(chan connectors.Change, pushBuffer)}
	probe := f.list().MaxResults(1).StartTime(f.now().Add(-time.Minute).UTC().Format(time.RFC3339)).
		Fields("kind").Context(ctx)
	if _, err := probe.Do(); err != nil {
		return nil, fmt.Errorf("google: feed: cannot read the admin audit log (Reports API activities.list; "+
			"the service account needs scope %s in its domain-wide delegation and %s the Reports privilege): %w",
			reports.AdminReportsAuditReadonlyScope, s.cfg.Subject, err)
	}
	return f, nil
}

func (f *feed) list() *reports.ActivitiesListCall {
	return f.svc.Activities.List("all", "admin").CustomerId(f.s.cfg.Customer)
}

// cursor is where the feed resumes: the time of the last poll and the events already
// delivered that a poll looking back Overlap before it would see again.
type cursor struct {
	V     int       `json:"v"`
	Scope string    `json:"scope"` // customer or domain: a cursor of another directory is refused
	T     time.Time `json:"t"`
	Seen  []string  `json:"seen,omitempty"`
}

func (f *feed) scope() string {
	param, value := f.s.scope()
	return param + ":" + value
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseCursor decodes a cursor; one it cannot use wraps connectors.ErrCursorExpired.
func (f *feed) parseCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	switch {
	case err != nil || c.V != 1 || c.T.IsZero():
		return c, fmt.Errorf("google: feed: %w: not a cursor of this feed", connectors.ErrCursorExpired)
	case c.Scope != f.scope():
		return c, fmt.Errorf("google: feed: %w: the cursor is of %s, the source reads %s", connectors.ErrCursorExpired, c.Scope, f.scope())
	case f.now().Sub(c.T) > f.cfg.Retention-f.cfg.Overlap:
		return c, fmt.Errorf("google: feed: %w: the cursor is from %s, older than the %s Google keeps admin events",
			connectors.ErrCursorExpired, c.T.UTC().Format(time.RFC3339), f.cfg.Retention)
	}
	return c, nil
}

// eventKey identifies one activity (Google's id is its time and unique qualifier).
func eventKey(a *reports.Activity) string {
	if a.Id == nil {
		return ""
	}
	return a.Id.Time + "/" + strconv.FormatInt(a.Id.UniqueQualifier, 10)
}

// Watch implements connectors.Feed: it polls the admin audit log every PollInterval from
// Overlap before the previous poll, delivers the changes of events it has not delivered yet
// (with the cursor that records them), and delivers users pushed through Verify as they come.
// Starting from "" it first records the events already visible without delivering them. A
// cursor it cannot use fails at once with connectors.ErrCursorExpired. A failed poll is
// retried on the next tick; after 3 in a row Watch returns the error.
func (f *feed) Watch(ctx context.Context, cur string, fn func(connectors.ChangeBatch) error) error {
	var c cursor
	fresh := cur == ""
	if fresh {
		c = cursor{V: 1, Scope: f.scope(), T: f.now()}
	} else {
		var err error
		if c, err = f.parseCursor(cur); err != nil {
			return err
		}
	}
	f.mu.Lock()
	if f.watching {
		f.mu.Unlock()
		return errors.New("google: feed: already watching")
	}
	f.watching = true
	f.mu.Unlock()
	f.s.feedMu.Lock()
	f.s.feed = f
	f.s.feedMu.Unlock()
	defer func() {
		f.s.feedMu.Lock()
		if f.s.feed == f {
			f.s.feed = nil
		}
		f.s.feedMu.Unlock()
		f.mu.Lock()
		f.watching = false
		f.mu.Unlock()
	}()

	delivered := time.Time{}
	failures := 0
	poll := func(deliver bool) error {
		changes, next, err := f.poll(ctx, c)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			failures++
			f.logger.Warn("google feed poll failed", "failures", failures, "err", err)
			if failures >= maxPollFailures {
				return fmt.Errorf("google: feed: %d polls in a row failed: %w", failures, err)
			}
			return nil
		}
		failures = 0
		c = next
		if !deliver {
			changes = nil
		}
		if len(changes) == 0 && !delivered.IsZero() && c.T.Sub(delivered) < cursorEvery {
			return nil
		}
		delivered = c.T
		return fn(connectors.ChangeBatch{Changes: changes, Cursor: c.encode()})
	}
	if err := poll(!fresh); err != nil {
		return err
	}
	for {
		tick := f.after(f.cfg.PollInterval)
		for due := false; !due; {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case first := <-f.pushes:
				if err := fn(f.drain(first)); err != nil {
					return err
				}
			case <-tick:
				due = true
			}
		}
		if err := poll(true); err != nil {
			return err
		}
	}
}

// drain returns the pushed changes waiting, starting with first, as one batch (marked Full
// when pushes were lost to a full buffer).
func (f *feed) drain(first connectors.Change) connectors.ChangeBatch {
	b := connectors.ChangeBatch{Changes: []connectors.Change{first}}
more:
	for {
		select {
		case ch := <-f.pushes:
			b.Changes = append(b.Changes, ch)
		default:
			break more
		}
	}
	f.mu.Lock()
	if f.overflow {
		b.Full, b.Reason = true, "google push notifications arrived faster than they were handled; some were dropped"
		f.overflow = false
	}
	f.mu.Unlock()
	return b
}

// push hands a user change announced by a push notification to the watching feed.
func (f *feed) push(ch connectors.Change) {
	select {
	case f.pushes <- ch:
	default:
		f.mu.Lock()
		f.overflow = true
		f.mu.Unlock()
	}
}

// pushToFeed is called by Verify for every verified user notification.
func (s *source) pushToFeed(n Notification) {
	s.feedMu.Lock()
	f := s.feed
	s.feedMu.Unlock()
	if f == nil || n.UserID == "" {
		return
	}
	f.push(connectors.Change{Kind: connectors.ChangeUser, ID: n.UserID, Deleted: n.State == "delete", At: s.now()})
}

// Close implements connectors.Feed; the feed shares the source's connections.
func (f *feed) Close() error { return nil }

// poll lists the admin events from Overlap before c.T to now, and returns the changes of the
// ones c has not seen, and the cursor after them.
func (f *feed) poll(ctx context.Context, c cursor) ([]connectors.Change, cursor, error) {
	at := f.now()
	start := c.T.Add(-f.cfg.Overlap)
	if start.After(at) {
		start = at
	}
	seen := map[string]bool{}
	for _, k := range c.Seen {
		seen[k] = true
	}
	var fresh []*reports.Activity
	var keep []string
	pages := 0
	err := f.list().StartTime(start.UTC().Format(time.RFC3339Nano)).MaxResults(1000).
		Fields("nextPageToken,items(id(time,uniqueQualifier),events(type,name,parameters(name,value)))").
		Pages(ctx, func(p *reports.Activities) error {
			pages++
			for _, a := range p.Items {
				k := eventKey(a)
				if k == "" {
					continue
				}
				if t, err := time.Parse(time.RFC3339Nano, a.Id.Time); err == nil && !t.Before(at.Add(-f.cfg.Overlap)) {
					keep = append(keep, k)
				}
				if !seen[k] {
					seen[k] = true
					fresh = append(fresh, a)
				}
			}
			return nil
		})
	if err != nil {
		return nil, c, fmt.Errorf("google: list admin events since %s (page %d): %w", start.UTC().Format(time.RFC3339), pages+1, err)
	}
	// Events older than the next poll's window are never listed again: forget them.
	slices.Sort(keep)
	next := cursor{V: 1, Scope: c.Scope, T: at, Seen: slices.Compact(keep)}
	changes, err := f.changes(ctx, fresh)
	if err != nil {
		return nil, c, err
	}
	if len(fresh) > 0 {
		f.logger.Info("google admin events", "new", len(fresh), "changes", len(changes), "pages", pages)
	}
	return changes, next, nil
}

// pending is what one or more events say about one email.
type pending struct {
	kind    connectors.ChangeKind
	email   string
	deleted bool // only deletions were seen
	at      time.Time
}

// changes turns events (newest first, as Google lists them) into changes by id: each email is
// looked up once (groups.get or users.get, id only); an email only deleted is not looked up
// but named by the id the source learned for it from its reads (an email it never knew names
// nothing the target can hold, and is dropped). Nested groups a selected group expands bring
// that group along. Deleted is set only for emails whose every event was a
// deletion: a hint, which the engine confirms with a targeted read (missing).
func (f *feed) changes(ctx context.Context, acts []*reports.Activity) ([]connectors.Change, error) {
	byKey := map[string]*pending{}
	var order []string
	for i := len(acts) - 1; i >= 0; i-- { // oldest first
		a := acts[i]
		at, _ := time.Parse(time.RFC3339Nano, a.Id.Time)
		for _, ev := range a.Events {
			kind, email, ok := eventTarget(ev)
			if !ok {
				continue
			}
			k := string(kind) + ":" + strings.ToLower(email)
			p := byKey[k]
			if p == nil {
				p = &pending{kind: kind, email: email, deleted: true}
				byKey[k] = p
				order = append(order, k)
			}
			p.deleted = p.deleted && deletions[ev.Name]
			if at.After(p.at) {
				p.at = at
			}
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	if !f.s.snapshot().complete {
		// A restart that trusts the state store: learn the emails of what is in scope first.
		if err := f.s.index(ctx); err != nil {
			return nil, err
		}
	}
	known := f.s.snapshot()
	out := make([]connectors.Change, len(order))
	err := each(order, func(k string) error {
		p := byKey[k]
		i := slices.Index(order, k)
		old := known.ids[strings.ToLower(p.email)]
		if p.deleted {
			if old != "" {
				out[i] = connectors.Change{Kind: p.kind, ID: old, Deleted: true, At: p.at}
			}
			return nil
		}
		id, err := f.lookup(ctx, p.kind, p.email)
		if err != nil {
			return err
		}
		// Google no longer knows the email: the entry was deleted since, or its email changed
		// (an event of its new email follows). Either way it is reported changed, not
		// deleted: the targeted read tells which.
		switch {
		case id != "":
			out[i] = connectors.Change{Kind: p.kind, ID: id, At: p.at}
		case old != "":
			out[i] = connectors.Change{Kind: p.kind, ID: old, At: p.at}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A group id seen under an email that now names another (deleted, then created again)
	// is reported deleted too; nested groups bring the selected groups that expand them.
	var extra []connectors.Change
	for i, k := range order {
		p := byKey[k]
		old := known.ids[strings.ToLower(p.email)]
		if old != "" && out[i].ID != "" && out[i].ID != old {
			extra = append(extra, connectors.Change{Kind: p.kind, ID: old, Deleted: true, At: p.at})
		}
		if p.kind == connectors.ChangeGroup {
			for _, parent := range known.expandedIn[out[i].ID] {
				extra = append(extra, connectors.Change{Kind: connectors.ChangeGroup, ID: parent, At: p.at})
			}
		}
	}
	return dedupe(append(out, extra...)), nil
}

// dedupe keeps one change per entry, at the latest time; it is a deletion only when every
// change of the entry is.
func dedupe(changes []connectors.Change) []connectors.Change {
	idx := map[string]int{}
	var out []connectors.Change
	for _, c := range changes {
		if c.ID == "" {
			continue // an email the source never knew and Google no longer knows
		}
		k := string(c.Kind) + "|" + c.ID
		if i, ok := idx[k]; ok {
			if c.At.After(out[i].At) {
				out[i].At = c.At
			}
			out[i].Deleted = out[i].Deleted && c.Deleted
			continue
		}
		idx[k] = len(out)
		out = append(out, c)
	}
	return out
}

// eventTarget returns the user or group an admin event changes, by email.
func eventTarget(ev *reports.ActivityEvents) (connectors.ChangeKind, string, bool) {
	param := func(name string) string {
		for _, p := range ev.Parameters {
			if p.Name == name {
				return p.Value
			}
		}
		return ""
	}
	var kind connectors.ChangeKind
	var email string
	switch ev.Type {
	case typeGroupSettings:
		kind, email = connectors.ChangeGroup, param(paramGroupEmail)
	case typeUserSettings:
		if ignoredUserEvent(ev.Name) {
			return "", "", false
		}
		kind, email = connectors.ChangeUser, param(paramUserEmail)
	default:
		return "", "", false
	}
	if v := param(paramNewValue); emailChanges[ev.Name] && v != "" {
		email = v
	}
	return kind, email, email != ""
}

// lookup returns the id Google has for an email now ("" when it has none).
func (f *feed) lookup(ctx context.Context, kind connectors.ChangeKind, email string) (string, error) {
	var id string
	var err error
	if kind == connectors.ChangeGroup {
		g, gerr := f.s.svc.Groups.Get(email).Fields(googleapi.Field("id")).Context(ctx).Do()
		if gerr == nil {
			id = g.Id
		}
		err = gerr
	} else {
		u, uerr := f.s.svc.Users.Get(email).Fields(googleapi.Field("id")).Context(ctx).Do()
		if uerr == nil {
			id = u.Id
		}
		err = uerr
	}
	switch {
	case isNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("google: look up %s %s: %w", kind, email, err)
	}
	f.s.update(func(k *knowledge) { k.learn(id, email) })
	return id, nil
}
