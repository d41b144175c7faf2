package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/secret"
	"github.com/scimbridge/scimbridge/connectors/secret/awssecret"
	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// newLogger builds the process logger from the config's log section.
func newLogger(w io.Writer, c config.Log, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	switch c.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	if verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		opts.ReplaceAttr = jsonLogDurations // duration_ms=9.2, not nanoseconds (output.go)
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// counter counts requests by API and operation, and the throttled ones; it is the client's
// Observer, for the summary line, the bench command and the metrics.
type counter struct {
	mu        sync.Mutex
	requests  map[string]int  // attempts by "api.Operation", throttled ones included
	throttled map[string]int  // the attempts answered 429 / ThrottlingException, by operation
	next      client.Observer // also told, when set (serve's metrics)
}

// forward makes the counter pass every request on to o as well.
func (c *counter) forward(o client.Observer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = o
}

func newCounter() *counter { return &counter{requests: map[string]int{}, throttled: map[string]int{}} }

// ObserveRequest implements client.Observer.
func (c *counter) ObserveRequest(api, op string, status int, d time.Duration, err error) {
	c.mu.Lock()
	c.requests[api+"."+op]++
	if status == http.StatusTooManyRequests || errors.Is(err, client.ErrThrottled) {
		c.throttled[api+"."+op]++
	}
	next := c.next
	c.mu.Unlock()
	if next != nil {
		next.ObserveRequest(api, op, status, d, err)
	}
}

// snapshot returns copies of the request and throttle counts.
func (c *counter) snapshot() (requests, throttled map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.requests), maps.Clone(c.throttled)
}

// app is everything a sync needs, built from a config.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	source  connectors.Source
	mapping *connectors.Mapping
	state   state.Store
	// stateLoc is where the state store lives: the SQLite file, or the PostgreSQL URL, which holds
	// the database password (pass it only to package state; name the store with
	// cfg.StateDescription).
	stateLoc string
	secrets  *secret.Resolver // the process's one resolver of secret references
	client   *client.Client
	reader   reconcile.StateReader
	counter  *counter
	// accessReader and accessApplier are the sso-admin and organizations clients, and access the
	// phase that plans and applies the access section; all nil without one (access.go).
	accessReader  access.Reader
	accessApplier access.Applier
	access        *accessPhase
	accessCalls   interface {
		Calls() (map[string]int64, int64)
	}
	// onRunStart is told each run's id (the state lock's holder record).
	onRunStart func(runID int64)
	// dirSource, when set (serve), reads the source for the reconciler and keeps the last
	// complete read for the change feed's targeted runs.
	dirSource *reconcile.DirectorySource
	// report is the mapping report of the last source read (reportMu guards it).
	reportMu sync.Mutex
	report   connectors.Report
	// targetDesc names the target for messages, without secrets.
	targetDesc string
	closers    []func() error
}

func (rt *app) Close() error {
	var errs []error
	for i := len(rt.closers) - 1; i >= 0; i-- {
		errs = append(errs, rt.closers[i]())
	}
	return errors.Join(errs...)
}

// newSecrets is the process's resolver of secret references (AWS values cached for a minute),
// passed to the config's secrets, the source connector and the SCIM client's token.
func newSecrets(log *slog.Logger) *secret.Resolver {
	return secret.NewResolver(secret.ResolverOptions{
		Backends: awssecret.Backends(awssecret.Options{}),
		Logger:   log.With("component", "secret"),
	})
}

// newRuntime opens the source, the state store and the target (starting the embedded Identity
// Center when no target is configured). Secret references resolve through secrets.
func newRuntime(ctx context.Context, cfg *config.Config, log *slog.Logger, secrets *secret.Resolver) (_ *app, err error) {
	rt, err := openSource(ctx, cfg, log, secrets)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = rt.Close()
		}
	}()
	if rt.stateLoc, err = cfg.StateLocation(ctx, secrets); err != nil {
		return nil, err
	}
	if !cfg.UsesPostgres() {
		if err := os.MkdirAll(filepath.Dir(rt.stateLoc), 0o700); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
	}
	if rt.state, err = state.OpenStore(ctx, rt.stateLoc, state.WithLogger(log.With("component", "state"))); err != nil {
		return nil, err
	}
	rt.closers = append(rt.closers, rt.state.Close)

	if err := rt.openTarget(ctx); err != nil {
		return nil, err
	}
	if rt.access, err = newAccessPhase(cfg, rt.state, rt.accessReader, rt.accessApplier); err != nil {
		return nil, err
	}
	return rt, nil
}

// openSource starts an app with the mapping compiled and the source open; the state store and
// the target are the caller's to open. It fails at once, not at the first request, when the SCIM
// token cannot be had.
func openSource(ctx context.Context, cfg *config.Config, log *slog.Logger, secrets *secret.Resolver) (_ *app, err error) {
	rt := &app{cfg: cfg, log: log, secrets: secrets, counter: newCounter()}
	if cfg.Target.SCIMURL != "" {
		if _, err := cfg.SCIMToken(ctx, secrets); err != nil {
			return nil, err
		}
	}
	if rt.mapping, err = cfg.CompileMapping(); err != nil {
		return nil, err
	}
	for _, line := range rt.mapping.Deprecated() {
		log.Warn("the configuration uses an old spelling; it still works", "key", line)
	}
	if rt.source, err = cfg.OpenSource(log.With("component", "source"), secrets); err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	rt.closers = append(rt.closers, rt.source.Close)
	return rt, nil
}

func (rt *app) openTarget(ctx context.Context) error {
	cfg, t := rt.cfg, rt.cfg.Target
	httpClient, err := targetHTTPClient(cfg)
	if err != nil {
		return err
	}
	profile := targetProfile(t)
	rate := client.LimiterConfig{Initial: t.Rate.Initial, Min: t.Rate.Min, Max: t.Rate.Max} // defaults from config
	baseURL := t.SCIMURL
	token := func(ctx context.Context) (string, error) {
		s, err := cfg.SCIMToken(ctx, rt.secrets) // read on every request: a rotated token file is picked up
		return s.Reveal(), err
	}
	var isCfg *client.IdentityStoreConfig
	var emb *embedded
	if baseURL == "" {
		emu, url, isEndpoint, err := startEmbedded(cfg.EmbeddedDataFile(), rt.log.With("component", "embedded-identity-center"))
		if err != nil {
			return err
		}
		emb = emu
		rt.closers = append(rt.closers, emu.close)
		baseURL = url
		tok := emu.Token()
		token = func(context.Context) (string, error) { return tok, nil }
		isCfg = &client.IdentityStoreConfig{StoreID: emu.IdentityStoreID(), Region: "us-east-1", Endpoint: isEndpoint,
			Credentials: credentials.NewStaticCredentialsProvider("embedded", "embedded", "")}
		rt.targetDesc = "the embedded Identity Center (" + cfg.EmbeddedDataFile() + ")"
	} else {
		rt.targetDesc = baseURL
		if t.IdentityStoreID != "" {
			awsCfg, err := loadAWSConfig(ctx, t)
			if err != nil {
				return err
			}
			isCfg = &client.IdentityStoreConfig{StoreID: t.IdentityStoreID, AWS: &awsCfg, Endpoint: t.IdentityStoreEndpoint}
		}
	}
	rt.client, err = client.New(client.Config{
		BaseURL:         baseURL,
		Token:           token,
		HTTPClient:      httpClient,
		Profile:         profile,
		Limiter:         client.NewLimiter(rate),
		Observer:        rt.counter,
		Logger:          rt.log.With("component", "scim"),
		UserAgent:       "scimbridge/" + version,
		AuthHint:        tokenHint(t),
		UnreachableHint: "check target.scim_url, and that the target is up",
		ProfileHint:     "set target.profile: generic",
	})
	if err != nil {
		return err
	}
	rt.reader = rt.client
	if cfg.Access != nil {
		if err := rt.openAccess(ctx, emb); err != nil {
			return err
		}
	}
	if isCfg != nil {
		isCfg.HTTPClient = httpClient
		isCfg.Observer = rt.counter
		isCfg.Logger = rt.log.With("component", "identitystore")
		isCfg.Limiter = client.NewLimiter(client.LimiterConfig{Initial: rate.Initial, Min: rate.Min, Max: rate.Max}) // its own bucket: identitystore is limited apart from SCIM
		if rt.reader, err = client.NewIdentityStoreReader(ctx, *isCfg); err != nil {
			return err
		}
	}
	return nil
}

// tokenHint names the setting the SCIM token came from, for a 401 or 403.
func tokenHint(t config.Target) string {
	if t.TokenFile != "" {
		return "check target.token_file (the file's content is the token) and that the token is current"
	}
	return "check target.token (SCIMBRIDGE_TARGET_TOKEN, or a target.token_file) and that the token is current"
}

// loadAWSConfig loads the AWS configuration the way the AWS CLI does: environment variables
// (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_IDENTITYSTORE, credentials), the
// shared config and credentials files, SSO, web identity and the instance or task role.
// target.region and target.identitystore_endpoint, when set, win over what the environment says.
func loadAWSConfig(ctx context.Context, t config.Target) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if t.Region != "" {
		opts = append(opts, awsconfig.WithRegion(t.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("identitystore: load the AWS configuration (AWS_PROFILE, AWS_CONFIG_FILE, ...): %w", err)
	}
	if awsCfg.Region == "" {
		return aws.Config{}, errors.New("target.region: not set, and the AWS configuration names no region (AWS_REGION, or region in the AWS_PROFILE's section of ~/.aws/config)")
	}
	return awsCfg, nil
}

func targetHTTPClient(cfg *config.Config) (*http.Client, error) {
	c := client.DefaultHTTPClient()
	c.Timeout = time.Duration(cfg.Target.Timeout)
	if cfg.Target.CAFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(cfg.Target.CAFile) // absolute: resolved when the config was loaded
	if err != nil {
		return nil, fmt.Errorf("target.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("target.ca_file: no certificate found in %s", cfg.Target.CAFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.Transport = tr
	return c, nil
}

// embedded is the embedded Identity Center serving on a loopback port for one process.
type embedded struct {
	*emulator.Emulator
	srv  *http.Server
	base string // http://127.0.0.1:PORT
}

// accessEndpoints returns the BaseEndpoints of the embedded sso-admin and organizations APIs.
func (e *embedded) accessEndpoints() (ssoAdmin, organizations string) {
	return e.base + e.SSOAdminPath(), e.base + e.OrganizationsPath()
}

func (e *embedded) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(e.srv.Shutdown(ctx), e.Emulator.Close())
}

// startEmbedded starts the embedded Identity Center on its data file and returns its SCIM URL and
// identitystore endpoint.
func startEmbedded(dataFile string, log *slog.Logger) (*embedded, string, string, error) {
	if err := os.MkdirAll(filepath.Dir(dataFile), 0o700); err != nil {
		return nil, "", "", fmt.Errorf("embedded identity center: %w", err)
	}
	// Its admin APIs (sso-admin, organizations) are not rate limited, as its SCIM API is not: a
	// local target needs no pacing (the emulator command acts AWS's limits out).
	emu, err := emulator.New(emulator.Options{DataPath: dataFile, Logger: log, Access: emulator.AccessOptions{RateLimit: -1}})
	if err != nil {
		return nil, "", "", fmt.Errorf("embedded identity center: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		emu.Close()
		return nil, "", "", fmt.Errorf("embedded identity center: %w", err)
	}
	srv := &http.Server{Handler: emu.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	return &embedded{Emulator: emu, srv: srv, base: base}, base + emu.SCIMPath(), base + emu.IdentityStorePath(), nil
}

// reconciler builds the reconciler over the runtime.
func (rt *app) reconciler(progress func(done, total int), onPlan func(*plan.Plan)) (*reconcile.Reconciler, error) {
	desired := rt.desired
	var targeted reconcile.TargetedFunc
	var applied func()
	if rt.dirSource != nil {
		desired, targeted, applied = rt.dirSource.Desired, rt.dirSource.Targeted, rt.dirSource.MarkApplied
	}
	return reconcile.New(reconcile.Config{
		Desired:              desired,
		Targeted:             targeted,
		OnApplied:            applied,
		DesiredNormalized:    true, // Mapping.Apply normalises
		Target:               rt.client,
		Reader:               rt.reader,
		State:                rt.state,
		Plan:                 rt.cfg.PlanOptions(),
		Guards:               rt.cfg.Guards(),
		Concurrency:          rt.cfg.Target.Concurrency,
		FullReconcileEvery:   time.Duration(*rt.cfg.Sync.FullReconcileInterval),
		Logger:               rt.log,
		Progress:             progress,
		OnPlan:               onPlan,
		OnRunStart:           rt.onRunStart,
		MaxMembersPerRequest: rt.maxMembers(),
		After:                rt.after(),
		BeforeApply:          rt.beforeApply(),
	})
}

// after is the phase the reconciler runs after users and groups: access, when configured.
func (rt *app) after() reconcile.AfterFunc {
	if rt.access == nil {
		return nil
	}
	return rt.access.run
}

// maxMembers is the target's limit of membership changes per request.
func (rt *app) maxMembers() int {
	return targetProfile(rt.cfg.Target).MaxMembersPerRequest
}

// targetProfile converts the configured target.profile into the client's profile: identity_center
// or generic, with target.page_size, target.members_per_request and target.group_members where
// they are set (a generic target's /ServiceProviderConfig gives the rest).
func targetProfile(t config.Target) client.Profile {
	p := client.IdentityCenter
	if t.Profile == config.ProfileGeneric {
		p = client.Generic
	}
	if t.PageSize > 0 {
		p.MaxPageSize = t.PageSize
	}
	if t.MembersPerRequest > 0 {
		p.MaxMembersPerRequest = t.MembersPerRequest
	}
	switch t.GroupMembers {
	case config.GroupMembersAuto:
		p.Members = client.MembersAuto
		if t.Profile != config.ProfileGeneric {
			p.Members = client.MembersByFilter
		}
	case config.GroupMembersListings:
		p.Members = client.MembersInListings
	case config.GroupMembersFilter:
		p.Members = client.MembersByFilter
	case config.GroupMembersGet:
		p.Members = client.MembersByGet
	}
	return p
}

// desired reads the source and maps it.
func (rt *app) desired(ctx context.Context) (scim.Snapshot, error) {
	dir, err := rt.source.Read(ctx)
	if err != nil {
		return scim.Snapshot{}, err
	}
	snap := rt.mapping.Apply(dir)
	rep := rt.mapping.Report(dir, snap) // users without an email, attributes no entry holds
	rep.Log(rt.log)
	rt.reportMu.Lock()
	rt.report = rep
	rt.reportMu.Unlock()
	return snap, nil
}

// keepDirectory makes the reconciler keep the last complete source read in memory, so that the
// change feed's runs read only the changed entries (serve).
func (rt *app) keepDirectory() error {
	ds, err := reconcile.NewDirectorySource(reconcile.DirectorySourceConfig{
		Source:  rt.source,
		Mapping: rt.mapping,
		Logger:  rt.log.With("component", "source"),
		OnRead: func(dir *connectors.Directory, snap scim.Snapshot, targeted bool) {
			rep := rt.mapping.Report(dir, snap)
			if !targeted { // a targeted run would repeat the full read's warnings on every change
				rep.Log(rt.log)
			}
			rt.reportMu.Lock()
			rt.report = rep
			rt.reportMu.Unlock()
		},
	})
	rt.dirSource = ds
	return err
}

// lastReport is the mapping report of the last source read: what sync shows beside the plan.
func (rt *app) lastReport() connectors.Report {
	rt.reportMu.Lock()
	defer rt.reportMu.Unlock()
	return rt.report
}
