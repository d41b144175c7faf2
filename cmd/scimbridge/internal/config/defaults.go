package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scimbridge/scimbridge/connectors/google"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/scim/plan"
)

// The defaults of the target's adaptive limiter and writers. They are set here, in the config, so
// that deploy/CONFIG.md shows them; the client and the reconciler receive them filled in.
const (
	defaultConcurrency         = 16
	defaultRateInitial         = 10.0  // about half of what Identity Center's APIs are known to allow
	defaultRateInitialEmbedded = 500.0 // the embedded target has no rate limit
	defaultRateMin             = 0.5
	defaultRateMax             = 1000.0
)

// describedDefaults describes, for deploy/CONFIG.md, the defaults that depend on other keys (or on
// what a generic target says of itself), where the value setDefaults fills in for an otherwise
// empty config would mislead, and the zero defaults worth stating.
var describedDefaults = map[string]string{
	"state.lock_timeout":         "0s: give up at once",
	"target.page_size":           "100; generic: the target's filter.maxResults, else 100",
	"target.members_per_request": "100; generic: 1000",
	"target.rate.initial":        "10; 500 for the embedded target",
	"target.rate.max":            "1000, or rate.min when higher",
	"target.embedded.data_file":  "identity-center.db in data_dir",
	"state.path":                 "state.db in data_dir",
	"service.ready_max_age":      "3 × service.interval",
	// The LDAP connector's flavour (active_directory, openldap, generic) gives these.
	"source.ldap.id_attribute":                 "by flavour",
	"source.ldap.users.filter":                 "by flavour",
	"source.ldap.users.attributes":             "by flavour",
	"source.ldap.users.key_attributes":         "by flavour",
	"source.ldap.groups.filter":                "by flavour",
	"source.ldap.groups.attributes":            "by flavour",
	"source.ldap.groups.member_attributes":     "by flavour",
	"source.ldap.groups.member_uid_attributes": "by flavour",
}

// connectorDefaults are the defaults the source connectors fill in themselves when they open,
// taken from their own constants, for deploy/CONFIG.md.
func connectorDefaults() map[string]string {
	dur := func(d time.Duration) string { return zeroUnits.ReplaceAllString(d.String(), "$1") }
	return map[string]string{
		"source.google.customer":           google.DefaultCustomer,
		"source.google.suspended":          fmt.Sprint(google.Disable),
		"source.google.archived":           fmt.Sprint(google.Disable),
		"source.google.nested_groups":      fmt.Sprint(google.Expand),
		"source.google.concurrency":        strconv.Itoa(google.DefaultConcurrency),
		"source.google.max_attempts":       strconv.Itoa(google.DefaultMaxAttempts),
		"source.google.retry_backoff":      dur(google.DefaultRetryBackoff),
		"source.google.max_retry_backoff":  dur(google.DefaultMaxRetryBackoff),
		"source.google.endpoint":           google.DefaultEndpoint,
		"source.google.watch.events":       "[" + strings.Join(google.DefaultWatchEvents, ", ") + "]",
		"source.google.watch.ttl":          dur(google.DefaultWatchTTL),
		"source.google.watch.renew_before": dur(google.DefaultRenewBefore),
		"source.google.feed.poll_interval": dur(google.DefaultPollInterval),
		"source.google.feed.overlap":       dur(google.DefaultFeedOverlap),
		"source.google.feed.retention":     dur(google.DefaultFeedRetention),
		"source.ldap.page_size":            strconv.Itoa(ldap.MaxPageSize),
		"source.ldap.dial_timeout":         dur(ldap.DefaultDialTimeout),
		"source.ldap.request_timeout":      dur(ldap.DefaultRequestTimeout),
		"source.ldap.users.scope":          "sub",
		"source.ldap.groups.scope":         "sub",
		"source.ldap.groups.nested":        fmt.Sprint(ldap.NestedClient),
		"source.ldap.kerberos.krb5_conf":   "/etc/krb5.conf",
		"source.ldap.feed.mode":            ldap.FeedAuto,
		"source.ldap.feed.poll_interval":   dur(ldap.DefaultPollInterval),
	}
}

// setDefaults fills in every key the person left out: the one home of the config's defaults.
// Parse calls it after decoding, Load after the environment is applied (so that a default that
// depends on another key sees that key's final value). It only fills zero values (and nil
// pointers, where an explicit 0 means something), so calling it again changes nothing; Validate
// then only checks.
func (c *Config) setDefaults() {
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	t := &c.Target
	if t.Profile == "" {
		t.Profile = ProfileIdentityCenter
	}
	if t.GroupMembers == "" {
		t.GroupMembers = GroupMembersAuto
	}
	if t.Timeout == 0 {
		t.Timeout = Duration(30 * time.Second)
	}
	if t.Concurrency == 0 {
		t.Concurrency = defaultConcurrency
	}
	if t.Rate.Initial == 0 {
		t.Rate.Initial = defaultRateInitial
		if t.SCIMURL == "" {
			t.Rate.Initial = defaultRateInitialEmbedded
		}
	}
	// As the limiter has always done: an unset min is 0.5 and an unset max 1000, and a max below
	// the min is raised to it (only an explicit min above an explicit max is a mistake).
	if t.Rate.Min == 0 {
		t.Rate.Min = defaultRateMin
		if t.Rate.Max > 0 && t.Rate.Max < t.Rate.Min {
			t.Rate.Max = t.Rate.Min
		}
	}
	if t.Rate.Max == 0 {
		t.Rate.Max = max(defaultRateMax, t.Rate.Min)
	}

	s := &c.Sync
	if s.Policy == "" {
		s.Policy = plan.PolicySync
	}
	if s.Deprovision == "" {
		s.Deprovision = plan.DeprovisionDelete
	}
	if s.Adopt == "" {
		s.Adopt = plan.AdoptNone
	}
	if s.FullReconcileInterval == nil {
		d := Duration(24 * time.Hour)
		s.FullReconcileInterval = &d
	}
	g := &s.Guards // the guards' defaults live in package plan, beside the guards
	if g.MaxDeletes == nil {
		g.MaxDeletes = ptr(plan.DefaultGuards.MaxDeletes)
	}
	if g.MaxDeletePercent == nil {
		g.MaxDeletePercent = ptr(plan.DefaultGuards.MaxDeletePercent)
	}
	if g.MaxClearPercent == nil {
		g.MaxClearPercent = ptr(plan.DefaultGuards.MaxClearPercent)
	}
	c.setAccessDefaults()
	c.Service.setDefaults()
}

func (s *Service) setDefaults() {
	if s.Listen == "" {
		s.Listen = "127.0.0.1:8080"
	}
	if s.Interval == 0 {
		s.Interval = Duration(time.Hour)
	}
	if s.Jitter == nil {
		s.Jitter = ptr(0.1)
	}
	if s.MinTriggerGap == nil {
		s.MinTriggerGap = ptr(Duration(30 * time.Second))
	}
	if s.AuthFailuresPerMinute == 0 {
		s.AuthFailuresPerMinute = 5
	}
	if s.ReplayWindow == 0 {
		s.ReplayWindow = Duration(5 * time.Minute)
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 1 << 20
	}
	if s.ReadyMaxAge == 0 {
		s.ReadyMaxAge = 3 * s.Interval
	}
	if s.ProbeCache == 0 {
		s.ProbeCache = Duration(30 * time.Second)
	}
	if s.ShutdownGrace == 0 {
		s.ShutdownGrace = Duration(30 * time.Second)
	}
	s.Feed.setDefaults()
}

func ptr[T any](v T) *T { return &v }
