package google

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/secret"
)

// Handling of suspended and archived users (Config.Suspended, Config.Archived).
const (
	// Disable keeps the user and maps it as inactive (the default).
	Disable = "disable"
	// Omit leaves the user out of the directory, as if it were not in scope.
	Omit = "omit"
)

// Ways of flattening nested groups (Config.NestedGroups).
const (
	// Expand lists the direct members of every group and expands nested groups that are not
	// themselves selected by listing their members too; cycles are tolerated (the default).
	Expand = "expand"
	// Derived asks Google for every direct and indirect member (includeDerivedMembership).
	Derived = "derived"
)

// Defaults applied to zero values of Config.
const (
	DefaultCustomer        = "my_customer"
	DefaultConcurrency     = 4
	DefaultMaxAttempts     = 5
	DefaultRetryBackoff    = time.Second
	DefaultMaxRetryBackoff = 32 * time.Second
	DefaultWatchTTL        = 6 * time.Hour
	DefaultRenewBefore     = 15 * time.Minute
	DefaultPollInterval    = 30 * time.Second
	DefaultFeedOverlap     = 10 * time.Minute
	DefaultFeedRetention   = 180 * 24 * time.Hour
	// DefaultEndpoint is the Admin SDK's base URL.
	DefaultEndpoint = "https://admin.googleapis.com/"
)

// DefaultWatchEvents are the Users.Watch events subscribed to when Watch.Events is empty.
var DefaultWatchEvents = []string{"add", "delete", "update", "undelete"}

var watchEvents = []string{"add", "delete", "makeAdmin", "undelete", "update"}

// Config configures a Google Workspace source. Zero values take the defaults named on each
// field. It is decoded strictly from YAML by the service's config loader.
type Config struct {
	// Customer is the Workspace customer id read from; default "my_customer" (the customer of
	// the admin in Subject). Ignored when Domain is set.
	Customer string `yaml:"customer"`
	// Domain restricts users, groups and watches to one domain of the customer.
	Domain string `yaml:"domain"`
	// Subject is the admin user impersonated through domain-wide delegation (required).
	Subject string `yaml:"subject"`
	// ServiceAccountKey is a service-account key (JSON) with domain-wide delegation; or give
	// ServiceAccountKeyFile. Exactly one of the key and ImpersonateServiceAccount is required.
	ServiceAccountKey secret.Secret `yaml:"service_account_key"`
	// ServiceAccountKeyFile names a file holding the service-account key.
	ServiceAccountKeyFile string `yaml:"service_account_key_file"`
	// Secrets resolves ServiceAccountKey when it is a reference (aws-secretsmanager://, ...); set
	// by the program, not the config file. Nil: one with the default options, which
	// reads file:// and env:// but no AWS reference.
	Secrets *secret.Resolver `yaml:"-"`
	// ImpersonateServiceAccount is the email of a service account with domain-wide delegation
	// that the ambient credentials (Application Default Credentials, for example a workload
	// identity federation config) impersonate: no key file at all.
	ImpersonateServiceAccount string `yaml:"impersonate_service_account"`
	// Delegates is the chain of service accounts for ImpersonateServiceAccount, if any.
	Delegates []string `yaml:"delegates"`
	// UserQuery is a Users.List query, such as "orgUnitPath='/Eng' isSuspended=false".
	UserQuery string `yaml:"user_query"`
	// GroupQuery is a Groups.List query, such as "email:aws-*"; only these groups are read.
	GroupQuery string `yaml:"group_query"`
	// CustomSchemas names the custom schemas the mapping uses; when set, users are read with
	// projection "custom" and this customFieldMask, and their fields appear as attributes
	// "customSchemas.<Schema>.<field>".
	CustomSchemas []string `yaml:"custom_schemas"`
	// Suspended is "disable" (default: read, mapped inactive) or "omit".
	Suspended string `yaml:"suspended"`
	// Archived is "disable" (default) or "omit".
	Archived string `yaml:"archived"`
	// NestedGroups is "expand" (default) or "derived".
	NestedGroups string `yaml:"nested_groups"`
	// Concurrency bounds the requests in flight at once; default 4, at most 64.
	Concurrency int `yaml:"concurrency"`
	// MaxAttempts bounds the attempts of one request (1 + retries); default 5, so a page that
	// fails 4 times in a row still succeeds on its fifth try.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBackoff is the first retry's delay, doubled on each further retry (with jitter) up
	// to MaxRetryBackoff; defaults 1s and 32s. A Retry-After header is honoured.
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// MaxRetryBackoff caps the delay between two attempts.
	MaxRetryBackoff time.Duration `yaml:"max_retry_backoff"`
	// Endpoint overrides the Admin SDK base URL (tests, proxies); default Google's.
	Endpoint string `yaml:"endpoint"`
	// Watch configures push notifications; off when Watch.Address is empty.
	Watch WatchConfig `yaml:"watch"`
	// Feed configures the change feed (Reports API polling for group and membership changes).
	Feed FeedConfig `yaml:"feed"`
}

// FeedConfig configures the change feed: admin audit events of the Reports API, polled.
type FeedConfig struct {
	// PollInterval is the time between two polls of the admin audit log; default 30s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Overlap is how far back before the previous poll each poll looks again, so that events
	// Google reports late (its documented lag is "a couple of minutes") are still seen; events
	// already seen are not delivered twice. Default 10m.
	Overlap time.Duration `yaml:"overlap"`
	// Retention is how long Google keeps admin audit events (6 months); a cursor older than
	// this is refused and the engine runs a full read. Default 180 days.
	Retention time.Duration `yaml:"retention"`
}

// WatchConfig configures Users.Watch push channels.
type WatchConfig struct {
	// Address is the HTTPS URL of the service's webhook that Google calls.
	Address string `yaml:"address"`
	// Events are the user events watched, one channel each; default add, delete, update,
	// undelete. Google knows add, delete, makeAdmin, undelete, update.
	Events []string `yaml:"events"`
	// TTL is the channel lifetime asked for; default 6h (Google may grant less).
	TTL time.Duration `yaml:"ttl"`
	// RenewBefore is how long before its expiry a channel is replaced; default 15m.
	RenewBefore time.Duration `yaml:"renew_before"`
}

// Enabled reports whether push notifications are configured.
func (w WatchConfig) Enabled() bool { return w.Address != "" }

// withDefaults returns the config with every zero value replaced by its default.
func (c Config) withDefaults() Config {
	if c.Customer == "" {
		c.Customer = DefaultCustomer
	}
	if c.Suspended == "" {
		c.Suspended = Disable
	}
	if c.Archived == "" {
		c.Archived = Disable
	}
	if c.NestedGroups == "" {
		c.NestedGroups = Expand
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	if len(c.Watch.Events) == 0 {
		c.Watch.Events = DefaultWatchEvents
	}
	if c.Watch.TTL == 0 {
		c.Watch.TTL = DefaultWatchTTL
	}
	if c.Watch.RenewBefore == 0 {
		c.Watch.RenewBefore = DefaultRenewBefore
	}
	if c.Feed.PollInterval == 0 {
		c.Feed.PollInterval = DefaultPollInterval
	}
	if c.Feed.Overlap == 0 {
		c.Feed.Overlap = DefaultFeedOverlap
	}
	if c.Feed.Retention == 0 {
		c.Feed.Retention = DefaultFeedRetention
	}
	return c
}

var schemaName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// Validate reports every problem of the configuration at once (errors.Join), after defaults.
// Messages name the field, never a secret's value.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("google: "+format, a...)) }

	if c.Subject == "" {
		bad("subject is required: the admin user impersonated through domain-wide delegation")
	} else if !strings.Contains(c.Subject, "@") {
		bad("subject %q is not an email address", c.Subject)
	}
	key := c.ServiceAccountKey.IsSet() || c.ServiceAccountKeyFile != ""
	switch {
	case c.ServiceAccountKey.IsSet() && c.ServiceAccountKeyFile != "":
		bad("service_account_key and service_account_key_file are both set; use one")
	case key && c.ImpersonateServiceAccount != "":
		bad("a service-account key and impersonate_service_account are both set; use one")
	case !key && c.ImpersonateServiceAccount == "":
		bad("one of service_account_key, service_account_key_file or impersonate_service_account is required")
	}
	if c.ImpersonateServiceAccount != "" && !strings.Contains(c.ImpersonateServiceAccount, "@") {
		bad("impersonate_service_account %q is not a service-account email", c.ImpersonateServiceAccount)
	}
	if len(c.Delegates) > 0 && c.ImpersonateServiceAccount == "" {
		bad("delegates is set without impersonate_service_account")
	}
	for _, s := range c.CustomSchemas {
		if !schemaName.MatchString(s) {
			bad("custom_schemas: %q is not a schema name", s)
		}
	}
	if c.Suspended != Disable && c.Suspended != Omit {
		bad("suspended is %q; want %q or %q", c.Suspended, Disable, Omit)
	}
	if c.Archived != Disable && c.Archived != Omit {
		bad("archived is %q; want %q or %q", c.Archived, Disable, Omit)
	}
	if c.NestedGroups != Expand && c.NestedGroups != Derived {
		bad("nested_groups is %q; want %q or %q", c.NestedGroups, Expand, Derived)
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		bad("concurrency is %d; want 1..64", c.Concurrency)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 20 {
		bad("max_attempts is %d; want 1..20", c.MaxAttempts)
	}
	if c.RetryBackoff < 0 || c.MaxRetryBackoff < c.RetryBackoff {
		bad("retry_backoff %s and max_retry_backoff %s: want 0 < retry_backoff <= max_retry_backoff", c.RetryBackoff, c.MaxRetryBackoff)
	}
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("endpoint %q is not an http(s) URL", c.Endpoint)
	} else if !strings.HasSuffix(c.Endpoint, "/") {
		bad("endpoint %q must end with /", c.Endpoint)
	}
	if c.Watch.Enabled() {
		if u, err := url.Parse(c.Watch.Address); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("watch.address %q is not an https URL (Google only calls https webhooks)", c.Watch.Address)
		}
		for _, e := range c.Watch.Events {
			if !slices.Contains(watchEvents, e) {
				bad("watch.events: %q is not one of %s", e, strings.Join(watchEvents, ", "))
			}
		}
		if c.Watch.TTL < time.Minute {
			bad("watch.ttl is %s; want at least 1m", c.Watch.TTL)
		}
		if c.Watch.RenewBefore <= 0 || c.Watch.RenewBefore >= c.Watch.TTL {
			bad("watch.renew_before is %s; want more than 0 and less than watch.ttl %s", c.Watch.RenewBefore, c.Watch.TTL)
		}
	}
	if c.Feed.PollInterval < time.Second {
		bad("feed.poll_interval is %s; want at least 1s", c.Feed.PollInterval)
	}
	if c.Feed.Overlap < 0 {
		bad("feed.overlap is %s; want 0 or more", c.Feed.Overlap)
	}
	if c.Feed.Retention <= c.Feed.Overlap {
		bad("feed.retention %s must be longer than feed.overlap %s", c.Feed.Retention, c.Feed.Overlap)
	}
	return errors.Join(errs...)
}

// Flavour returns the Google flavour's default mapping: expressions over the attributes this
// connector reads (see the package doc). Users: userName and email are the primary email;
// active is false for suspended or archived users; the enterprise attributes come from the
// primary organization, the "organization" external id and the manager relation.
func (c Config) Flavour() connectors.Flavour { return Flavour() }

// Flavour returns the Google flavour's default mapping (see Config.Flavour).
func Flavour() connectors.Flavour {
	return connectors.Flavour{
		Name: "google",
		User: map[string]string{
			"userName":              `lower(attr("primaryEmail"))`,
			"displayName":           `default(attr("name.displayName"), attr("name.fullName"))`,
			"givenName":             `attr("name.givenName")`,
			"familyName":            `attr("name.familyName")`,
			"email":                 `lower(attr("primaryEmail"))`,
			"emailType":             `"work"`,
			"phoneNumber":           `attr("phones.value")`,
			"phoneType":             `attr("phones.type")`,
			"title":                 `attr("organizations.title")`,
			"active":                `attr("suspended") != "true" && attr("archived") != "true"`,
			"address.streetAddress": `attr("addresses.streetAddress")`,
			"address.locality":      `attr("addresses.locality")`,
			"address.region":        `attr("addresses.region")`,
			"address.postalCode":    `attr("addresses.postalCode")`,
			"address.country":       `attr("addresses.countryCode")`,
			"address.formatted":     `attr("addresses.formatted")`,
			"address.type":          `attr("addresses.type")`,
			"employeeNumber":        `attr("externalIds.organization")`,
			"costCenter":            `attr("organizations.costCenter")`,
			"organization":          `attr("organizations.name")`,
			"division":              `attr("organizations.description")`,
			"department":            `attr("organizations.department")`,
			"manager":               `attr("relations.manager")`,
		},
		Group: map[string]string{
			"displayName": `default(attr("name"), attr("email"))`,
		},
	}
}
