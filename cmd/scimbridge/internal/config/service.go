package config

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

// Service configures `scimbridge serve`:
//
//	service:
//	  listen: 0.0.0.0:8080          # status page, /healthz, /readyz, /metrics and the webhooks
//	  webhook_listen: ""            # set to serve the webhooks on a listener of their own
//	  interval: 1h                  # from the end of one full run to the next scheduled one
//	  jitter: 0.1                   # each wait is interval ± 10%
//	  min_trigger_gap: 30s          # least time between two webhook-triggered runs
//	  webhook_secret_file: /run/secrets/webhook-secret   # HMAC-SHA256 key for POST /v1/sync
//	  bearer_token_file: /run/secrets/webhook-token      # or a bearer token
//	  ui_password_file: /run/secrets/ui-password         # signs in to the status page's plan and form (default: the bearer token)
//	  auth_failures_per_minute: 5   # failed authentications per client address, then 429
//	  ready_max_age: 3h             # /readyz fails when the last successful sync is older
//	  shutdown_grace: 30s
//	  feed: {enabled: true, batch_window: 2s}   # the source's change feed (see Feed)
type Service struct {
	// Listen is the address of the service's HTTP listener; default 127.0.0.1:8080.
	Listen string `yaml:"listen,omitempty"`
	// WebhookListen, when set, serves POST /v1/... on this address instead of Listen.
	WebhookListen string `yaml:"webhook_listen,omitempty"`
	// Interval is the time from the end of one full run to the next scheduled one; default 1h.
	Interval Duration `yaml:"interval,omitempty"`
	// Jitter spreads scheduled runs by up to this fraction of the interval either way (0..1);
	// default 0.1.
	Jitter *float64 `yaml:"jitter,omitempty"`
	// MinTriggerGap is the least time between the starts of two requested runs; default 30s.
	MinTriggerGap *Duration `yaml:"min_trigger_gap,omitempty"`
	// WebhookSecret is the HMAC-SHA256 key that signs POST /v1/sync.
	WebhookSecret     secret.Secret `yaml:"webhook_secret,omitempty"`
	WebhookSecretFile string        `yaml:"webhook_secret_file,omitempty"`
	// BearerToken authenticates POST /v1/sync with "Authorization: Bearer <token>".
	BearerToken     secret.Secret `yaml:"bearer_token,omitempty"`
	BearerTokenFile string        `yaml:"bearer_token_file,omitempty"`
	// UIPassword signs in to the status page, which then shows the last plan, the run errors
	// and the run form; default: the bearer token. With neither the page shows counts only.
	UIPassword     secret.Secret `yaml:"ui_password,omitempty"`
	UIPasswordFile string        `yaml:"ui_password_file,omitempty"`
	// AuthFailuresPerMinute is how many failed authentications (webhook token or signature,
	// status page password) one client address may make per minute before it is answered 429
	// until its allowance refills; default 5. Behind a proxy all clients share its address.
	AuthFailuresPerMinute int `yaml:"auth_failures_per_minute,omitempty"`
	// ReplayWindow is how far a signed request's timestamp may be from now; default 5m.
	ReplayWindow Duration `yaml:"replay_window,omitempty"`
	// MaxBodyBytes limits webhook bodies; default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty"`
	// ReadyMaxAge fails /readyz when the last successful sync is older; default 3 × interval.
	ReadyMaxAge Duration `yaml:"ready_max_age,omitempty"`
	// ProbeCache is how long /readyz reuses its check of the source and the target; default 30s.
	ProbeCache Duration `yaml:"probe_cache,omitempty"`
	// ShutdownGrace bounds the wait for a run in progress after SIGTERM; default 30s.
	ShutdownGrace Duration `yaml:"shutdown_grace,omitempty"`
	// Feed configures the source's change feed.
	Feed Feed `yaml:"feed,omitempty"`
}

func (s *Service) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, l := range [][2]string{{"service.listen", s.Listen}, {"service.webhook_listen", s.WebhookListen}} {
		if l[1] == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l[1]); err != nil {
			add("%s: %q is not host:port", l[0], l[1])
		}
	}
	if s.Interval < Duration(time.Second) {
		add("service.interval: %s is under 1s", time.Duration(s.Interval))
	}
	if s.Jitter != nil && (*s.Jitter < 0 || *s.Jitter > 1) {
		add("service.jitter: %g is outside 0..1", *s.Jitter)
	}
	if s.MinTriggerGap != nil && *s.MinTriggerGap < 0 {
		add("service.min_trigger_gap: must not be negative")
	}
	for _, p := range []struct {
		key    string
		inline secret.Secret
		file   string
	}{
		{"service.webhook_secret", s.WebhookSecret, s.WebhookSecretFile},
		{"service.bearer_token", s.BearerToken, s.BearerTokenFile},
		{"service.ui_password", s.UIPassword, s.UIPasswordFile},
	} {
		if p.inline.IsSet() && p.file != "" {
			add("%s and %s_file are both set; use one", p.key, p.key)
		}
	}
	if s.AuthFailuresPerMinute < 0 {
		add("service.auth_failures_per_minute: must not be negative")
	}
	if s.ReplayWindow < 0 {
		add("service.replay_window: must not be negative")
	}
	if s.MaxBodyBytes < 0 {
		add("service.max_body_bytes: must not be negative")
	}
	if s.ReadyMaxAge < 0 {
		add("service.ready_max_age: must not be negative")
	}
	if s.ProbeCache < 0 {
		add("service.probe_cache: must not be negative")
	}
	if s.ShutdownGrace < 0 {
		add("service.shutdown_grace: must not be negative")
	}
	return append(errs, s.Feed.validate()...)
}

// WebhookSecret resolves service.webhook_secret or its _file.
func (c *Config) WebhookSecret(ctx context.Context, secrets *secret.Resolver) (secret.Secret, error) {
	return secrets.Resolve(ctx, "service.webhook_secret", c.Service.WebhookSecret, c.Service.WebhookSecretFile)
}

// BearerToken resolves service.bearer_token or its _file.
func (c *Config) BearerToken(ctx context.Context, secrets *secret.Resolver) (secret.Secret, error) {
	return secrets.Resolve(ctx, "service.bearer_token", c.Service.BearerToken, c.Service.BearerTokenFile)
}

// UIPassword resolves service.ui_password or its _file.
func (c *Config) UIPassword(ctx context.Context, secrets *secret.Resolver) (secret.Secret, error) {
	return secrets.Resolve(ctx, "service.ui_password", c.Service.UIPassword, c.Service.UIPasswordFile)
}
