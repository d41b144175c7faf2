// Package emulator is an embedded look-alike of AWS IAM Identity Center as a provisioning target:
// a SCIM 2.0 endpoint at /{tenant}/scim/v2, the identitystore API, and the sso-admin and
// organizations APIs (all three AWS JSON 1.1) over the same SQLite data. It is as strict as Identity Center (and, with Options.Strict, as its older form),
// so that a client that passes against it does not fail against AWS. With Options.StrictRFC it
// acts out a generic SCIM 2.0 server that applies RFC 7644 literally instead (a remove of
// "members" without a value filter removes every member; startIndex paging), the oracle of the
// client's generic profile.
//
// It is the quickstart's default target, the fake for tests, and the benchmark target. It
// deliberately imports nothing from package scim: it is the independent oracle the client is
// tested against.
//
// Requests are routed by net/http ServeMux patterns: the SCIM operations by method and path
// (scimOperations in routes.go, one entry per operation and Stats key), the identitystore
// operations, which all POST to one path, by their X-Amz-Target header
// (identityStoreOperations in identitystore.go, handlers in identitystore_users.go,
// identitystore_groups.go and identitystore_memberships.go), and the access APIs the same way
// (access_api.go): organizations (organizations.go, an organization laid out on first start, see
// AccessOptions) and sso-admin (ssoadmin*.go: permission sets, their policies and tags, account
// assignments and provisioning, asynchronous with a completion delay and a limit of outstanding
// operations, and a shared request rate, as AWS has).
//
// Of github.com/elimity-com/scim the emulator uses only what it does well: its definitions of
// the core User, Group and enterprise User schemas and its discovery endpoints
// (/ServiceProviderConfig, /Schemas, /ResourceTypes; discovery.go). /Users and /Groups are served
// by the emulator's own handlers, because Identity Center's behaviour does not fit the
// library's resource handlers: lists page with cursors (or StrictRFC's startIndex) and filter
// with Identity Center's few eq forms, PATCH accepts forms the library's validation rejects (a
// bare manager id, for one), bodies are checked with Identity
// Center's limits and field-specific details, and errors have Identity Center's body, not RFC
// 7644's. Going through the library for those meant decoding each body twice, a stubbed GetAll
// and rewriting every error; now each body is decoded once and errors are written in Identity
// Center's shape directly.
//
// Use it in a test through package emulatortest, or standalone:
//
//	emu, err := emulator.New(emulator.Options{DataPath: "emu.db"})
//	...
//	http.ListenAndServe("127.0.0.1:8443", emu.Handler())
//	// SCIM base URL: "http://127.0.0.1:8443" + emu.SCIMPath(), bearer emu.Token()
//	// identitystore: BaseEndpoint "http://127.0.0.1:8443" + emu.IdentityStorePath()
//	// sso-admin, organizations: emu.SSOAdminPath(), emu.OrganizationsPath() likewise
package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/elimity-com/scim"
	"golang.org/x/time/rate"
)

// DefaultIdentityStorePath is the path prefix under which the identitystore API is served.
const DefaultIdentityStorePath = "/identitystore"

// StatsPath is the path of the authenticated statistics endpoint: GET returns Stats as JSON,
// DELETE resets them. It takes the same bearer token as the SCIM endpoint.
const StatsPath = "/_emulator/stats"

// maxBody limits every request body, as AWS does.
const maxBody = 1 << 20

// Options configure an Emulator. The fault knobs can be changed later with SetFaults.
type Options struct {
	// Tenant is the tenant id in the SCIM path. "" keeps the one stored in DataPath, or makes one.
	Tenant string
	// Token is the SCIM bearer token. "" keeps the one stored in DataPath, or makes a random one.
	Token string
	// IdentityStoreID is the identity store id (d-xxxxxxxxxx). "" keeps the stored one or makes one.
	IdentityStoreID string
	// DataPath is the SQLite file; "" keeps everything in memory.
	DataPath string
	// Strict acts out Identity Center's older form: list responses hold at most 50 resources
	// and there is no paging (no cursor).
	Strict bool
	// StrictRFC acts out a generic SCIM 2.0 server that applies RFC 7644 literally, not
	// Identity Center: a PATCH that removes "members" without a value filter removes EVERY
	// member, even when it carries a list of values (section 3.5.2.2), a replace of "members"
	// replaces them all, any number of membership changes fit in one request, and listings page
	// with startIndex and count and carry totalResults (section 3.4.2.4), without cursors.
	StrictRFC bool
	// MaxResults is the most resources a StrictRFC listing page holds, as /ServiceProviderConfig
	// says (filter.maxResults); 0 means 100.
	MaxResults int
	// MembersInListings makes group listings and GET /Groups/{id} carry the group's members, as
	// most SCIM servers do; Identity Center returns them empty.
	MembersInListings bool
	// RateLimit is the allowed request rate per second, per API (SCIM, identitystore); 0: unlimited.
	RateLimit float64
	// Burst is the token bucket size; 0 means max(1, RateLimit).
	Burst int
	// Latency is added to every request.
	Latency time.Duration
	// ErrorRatio is the fraction (0..1) of requests answered with an injected 500.
	ErrorRatio float64
	// DropRatio is the fraction (0..1) of requests whose connection is closed without an answer.
	DropRatio float64
	// Seed seeds the fault injection; the same seed gives the same sequence of faults.
	Seed int64
	// Logger receives the emulator's logs; nil discards them.
	Logger *slog.Logger
	// Access configures the organization and the sso-admin API.
	Access AccessOptions
}

// Faults are the knobs a running emulator can change: rate limit, latency, injected errors and
// dropped connections.
type Faults struct {
	RateLimit  float64
	Burst      int
	Latency    time.Duration
	ErrorRatio float64
	DropRatio  float64
}

// Stats holds call counters: one per operation ("scim.CreateUser", "scim.PatchGroup",
// "scim.ListUsers", "identitystore.ListUsers", "sso-admin.CreateAccountAssignment",
// "organizations.ListAccounts", ...), counting requests that reached the operation, plus
// "throttled", "injected" and "dropped" for requests the fault knobs answered. The access APIs
// add "sso-admin.throttled" and "organizations.throttled" (their share of "throttled", the
// outstanding-operation limit's refusals included), "sso-admin.OutstandingRefused" (operations
// refused for that limit) and "sso-admin.MaxOutstanding", which is not a count but the most
// asynchronous operations ever IN_PROGRESS at once.
type Stats map[string]int64

// Emulator is an IAM Identity Center look-alike. It is safe for concurrent use.
type Emulator struct {
	log               *slog.Logger
	store             *store
	tenant            string
	token             string
	storeID           string
	idPrefix          string
	strict            bool // Options.Strict
	strictRFC         bool // Options.StrictRFC
	rfcPageSize       int  // page cap of a StrictRFC listing (Options.MaxResults)
	membersInListings bool // Options.MembersInListings

	scimPath          string
	identityStorePath string
	discovery         scim.Server  // the library, for the discovery endpoints only
	routes            http.Handler // stats, identitystore and the 401/404 answers
	scimRoutes        http.Handler // SCIM operations, by path relative to scimPath

	faultMu  sync.Mutex
	faults   Faults
	rng      *mrand.Rand
	limiters map[string]*rate.Limiter

	statsMu sync.Mutex
	stats   Stats

	access *accessState // the organization, permission sets and assignments (access.go)

	closeOnce sync.Once
	closeErr  error
}

// New opens (or creates) the emulator's data and returns an emulator ready to serve.
func New(opts Options) (*Emulator, error) {
	ctx := context.Background()
	st, err := openStore(ctx, opts.DataPath)
	if err != nil {
		return nil, err
	}
	e := &Emulator{
		log:               opts.Logger,
		store:             st,
		strict:            opts.Strict,
		strictRFC:         opts.StrictRFC,
		rfcPageSize:       opts.MaxResults,
		membersInListings: opts.MembersInListings,
		identityStorePath: DefaultIdentityStorePath,
		stats:             Stats{},
		rng:               mrand.New(mrand.NewPCG(uint64(opts.Seed), uint64(opts.Seed)^0x9e3779b97f4a7c15)),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.tenant, err = e.setting(ctx, "tenant", opts.Tenant, randomTenant); err != nil {
		st.close()
		return nil, err
	}
	if e.token, err = e.setting(ctx, "token", opts.Token, randomToken); err != nil {
		st.close()
		return nil, err
	}
	if e.storeID, err = e.setting(ctx, "identity_store_id", opts.IdentityStoreID, randomStoreID); err != nil {
		st.close()
		return nil, err
	}
	if e.strict && e.strictRFC {
		st.close()
		return nil, errors.New("emulator: Strict and StrictRFC exclude each other")
	}
	if e.rfcPageSize <= 0 {
		e.rfcPageSize = defaultCount
	}
	if strings.ContainsAny(e.tenant, "/?#% ") {
		st.close()
		return nil, fmt.Errorf("emulator: tenant %q must not contain '/', '?', '#', '%%' or spaces", e.tenant)
	}
	e.idPrefix = strings.TrimPrefix(e.storeID, "d-")
	if len(e.idPrefix) != 10 {
		e.idPrefix = (e.idPrefix + "0000000000")[:10]
	}
	e.scimPath = "/" + e.tenant + "/scim/v2"
	if err := e.initAccess(ctx, opts.Access); err != nil {
		st.close()
		return nil, err
	}
	e.SetFaults(Faults{RateLimit: opts.RateLimit, Burst: opts.Burst, Latency: opts.Latency,
		ErrorRatio: opts.ErrorRatio, DropRatio: opts.DropRatio})
	if err := e.buildDiscovery(); err != nil {
		st.close()
		return nil, err
	}
	e.buildRoutes()
	return e, nil
}

// setting returns the explicit value (and stores it), else the stored one, else a new one.
func (e *Emulator) setting(ctx context.Context, key, explicit string, gen func() string) (string, error) {
	v := explicit
	if v == "" {
		stored, err := e.store.metaGet(ctx, key)
		if err != nil {
			return "", fmt.Errorf("emulator: read %s: %w", key, err)
		}
		v = stored
	}
	if v == "" {
		v = gen()
	}
	if err := e.store.metaPut(ctx, key, v); err != nil {
		return "", fmt.Errorf("emulator: store %s: %w", key, err)
	}
	return v, nil
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func randomTenant() string  { return newUUID() }
func randomToken() string   { return randomHex(64) }
func randomStoreID() string { return "d-" + randomHex(10) }

// newID makes an Identity Center style id: ten hex digits of the store, a dash, a UUID.
func (e *Emulator) newID() string { return e.idPrefix + "-" + newUUID() }

// Handler returns the HTTP handler serving SCIM, identitystore and the stats endpoint.
func (e *Emulator) Handler() http.Handler { return http.HandlerFunc(e.serveHTTP) }

// SCIMPath returns the SCIM base path, "/<tenant>/scim/v2".
func (e *Emulator) SCIMPath() string { return e.scimPath }

// IdentityStorePath returns the path prefix to append to the server URL for the identitystore
// client's BaseEndpoint.
func (e *Emulator) IdentityStorePath() string { return e.identityStorePath }

// Token returns the SCIM bearer token.
func (e *Emulator) Token() string { return e.token }

// Tenant returns the tenant id in the SCIM path.
func (e *Emulator) Tenant() string { return e.tenant }

// IdentityStoreID returns the identity store id the identitystore API answers to.
func (e *Emulator) IdentityStoreID() string { return e.storeID }

// SetFaults replaces the rate limit, latency and fault ratios. Rate limiter buckets start full.
func (e *Emulator) SetFaults(f Faults) {
	f.ErrorRatio = min(max(f.ErrorRatio, 0), 1)
	f.DropRatio = min(max(f.DropRatio, 0), 1)
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	e.faults = f
	e.limiters = map[string]*rate.Limiter{}
	if f.RateLimit > 0 {
		burst := f.Burst
		if burst <= 0 {
			burst = max(1, int(f.RateLimit))
		}
		for _, api := range []string{"scim", "identitystore"} {
			e.limiters[api] = rate.NewLimiter(rate.Limit(f.RateLimit), burst)
		}
	}
}

// Faults returns the current fault knobs.
func (e *Emulator) Faults() Faults {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return e.faults
}

// Stats returns a copy of the call counters.
func (e *Emulator) Stats() Stats {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	out := make(Stats, len(e.stats))
	for k, v := range e.stats {
		out[k] = v
	}
	return out
}

// ResetStats sets every counter back to zero.
func (e *Emulator) ResetStats() {
	e.statsMu.Lock()
	e.stats = Stats{}
	e.statsMu.Unlock()
}

func (e *Emulator) count(name string) {
	e.statsMu.Lock()
	e.stats[name]++
	e.statsMu.Unlock()
}

// Close closes the database.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.store.close() })
	return e.closeErr
}

// faultDecision is what the fault knobs decided for one request.
type faultDecision int

const (
	faultNone faultDecision = iota
	faultThrottle
	faultError
	faultDrop
)

// decide applies the rate limit and draws the injected faults for one request to api.
func (e *Emulator) decide(api string) (faultDecision, time.Duration, time.Duration) {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	f := e.faults
	if lim := e.limiters[api]; lim != nil {
		res := lim.Reserve()
		if delay := res.Delay(); delay > 0 {
			res.Cancel()
			return faultThrottle, f.Latency, max(delay, time.Second/time.Duration(max(1, int(f.RateLimit))))
		}
	}
	if f.DropRatio > 0 && e.rng.Float64() < f.DropRatio {
		return faultDrop, f.Latency, 0
	}
	if f.ErrorRatio > 0 && e.rng.Float64() < f.ErrorRatio {
		return faultError, f.Latency, 0
	}
	return faultNone, f.Latency, 0
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	// HTTP/2 or a recorder: abort the handler, which resets the stream.
	panic(http.ErrAbortHandler)
}
