package google

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/option"

	"github.com/scimbridge/scimbridge/connectors"
)

// source is a Google Workspace directory source.
type source struct {
	cfg      Config
	logger   *slog.Logger
	svc      *admin.Service
	tr       *transport
	identity string // the service account acting, for Check

	// life ends when the source is closed; channel renewal runs under it.
	life   context.Context
	cancel context.CancelFunc

	watchMu  sync.Mutex
	channels map[string]*channel // by channel id, current and being replaced
	watching bool
	wg       sync.WaitGroup
	now      func() time.Time
	after    func(time.Duration) <-chan time.Time

	// base is the HTTP client of token exchanges (tests), for the feed's own token source.
	base *http.Client
	// know is what the last full read and the targeted reads since taught (targeted.go).
	knowMu sync.Mutex
	know   *knowledge
	// feed is the change feed watching now, if any; Verify hands it pushed user changes.
	feedMu sync.Mutex
	feed   *feed
}

var (
	_ connectors.Source     = (*source)(nil)
	_ connectors.Checker    = (*source)(nil)
	_ Watcher               = (*source)(nil)
	_ connectors.FeedSource = (*source)(nil)
)

// Open validates the config and builds a source. No request is sent until Read, Check or
// Watch. The source also implements connectors.Checker and Watcher.
func (c Config) Open(logger *slog.Logger) (connectors.Source, error) {
	return c.open(logger, nil)
}

// open builds the source; base (tests) replaces the HTTP client of token exchanges and the
// transport under the retrying one.
func (c Config) open(logger *slog.Logger, base *http.Client) (*source, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("source", "google")
	life, cancel := context.WithCancel(context.Background())
	ts, identity, err := tokenSource(life, c, base, Scopes)
	if err != nil {
		cancel()
		return nil, err
	}
	var baseRT http.RoundTripper
	if base != nil {
		baseRT = base.Transport
	}
	tr := newTransport(baseRT, c, logger)
	hc := &http.Client{Transport: &oauth2.Transport{Source: ts, Base: tr}}
	svc, err := admin.NewService(life, option.WithHTTPClient(hc), option.WithEndpoint(c.Endpoint))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("google: admin client: %w", err)
	}
	return &source{
		cfg: c, logger: logger, svc: svc, tr: tr, identity: identity,
		life: life, cancel: cancel,
		channels: map[string]*channel{},
		now:      time.Now,
		after:    time.After,
		base:     base,
	}, nil
}

// scope returns how list calls name the customer or domain.
func (s *source) scope() (param, value string) {
	if s.cfg.Domain != "" {
		return "domain", s.cfg.Domain
	}
	return "customer", s.cfg.Customer
}

// Check reads the whole directory once and reports the impersonated admin and the counts, and
// whether the change feed can read the admin audit log (detail "feed").
func (s *source) Check(ctx context.Context) (connectors.CheckReport, error) {
	before := s.tr.requests.Load()
	d, err := s.Read(ctx)
	if err != nil {
		return connectors.CheckReport{}, err
	}
	members := 0
	for _, g := range d.Groups {
		members += len(g.Members)
	}
	requests := s.tr.requests.Load() - before
	feed := "available: the admin audit log (Reports API) is readable"
	if f, err := s.Feed(ctx); err != nil {
		feed = "unavailable: " + err.Error()
	} else {
		_ = f.Close()
	}
	param, value := s.scope()
	auth := "service-account key"
	if s.cfg.ImpersonateServiceAccount != "" {
		auth = "impersonated credentials"
	}
	return connectors.CheckReport{
		Identity: s.cfg.Subject + " (via " + s.identity + ")",
		Details: map[string]string{
			"auth":        auth,
			param:         value,
			"users":       strconv.Itoa(len(d.Users)),
			"groups":      strconv.Itoa(len(d.Groups)),
			"memberships": strconv.Itoa(members),
			"requests":    strconv.FormatInt(requests, 10),
			"feed":        feed,
			"scopes":      strings.Join(Scopes, " "),
		},
	}, nil
}

// Close stops the push channels (best effort, logged) and releases the source.
func (s *source) Close() error {
	s.watchMu.Lock()
	s.watching = false
	open := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		open = append(open, ch)
	}
	s.channels = map[string]*channel{}
	s.watchMu.Unlock()
	s.cancel()
	s.wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, ch := range open {
		if err := s.stopChannel(ctx, ch); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
