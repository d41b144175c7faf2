package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Profile describes what a SCIM target supports and allows.
type Profile struct {
	// MaxMembersPerRequest caps the members a group POST carries and the membership changes of
	// one group PATCH.
	MaxMembersPerRequest int
	// MaxPageSize is the count asked for per page of a listing; 0 means what the target's
	// /ServiceProviderConfig says (filter.maxResults) when Discover is set, else 100.
	MaxPageSize int
	// CursorPaging: listings page with cursor/nextCursor; otherwise with startIndex/totalResults.
	CursorPaging bool
	// GroupPut: the target supports PUT on groups.
	GroupPut bool
	// Members says how group members are read.
	Members MemberRead
	// RemoveByFilter: a PATCH removes members with one operation per member whose path is
	// members[value eq "<id>"] (RFC 7644 3.5.2.2); otherwise with one operation on path
	// "members" that lists the values, which Identity Center documents and which a server that
	// reads the RFC literally takes as "remove every member".
	RemoveByFilter bool
	// Discover: read /ServiceProviderConfig before the first listing, for the page size and
	// whether the target filters.
	Discover bool
}

// MemberRead is how a client reads the members of the target's groups.
type MemberRead int

const (
	// MembersAuto takes the members from the group listing when it shows any; when it shows
	// none (a server that leaves them out looks like one whose groups are all empty) they are
	// read per user with a filter if the target filters, else per group with a GET.
	MembersAuto MemberRead = iota
	// MembersInListings: group listings carry their members.
	MembersInListings
	// MembersByFilter: per user, GET /Groups?filter=members.value eq "<user id>".
	MembersByFilter
	// MembersByGet: per group, GET /Groups/{id}.
	MembersByGet
)

// IdentityCenter is the profile of AWS IAM Identity Center.
var IdentityCenter = Profile{MaxMembersPerRequest: 100, MaxPageSize: 100, CursorPaging: true, GroupPut: false, Members: MembersByFilter}

// Generic is the profile of a plain RFC 7644 target: what it supports is read from its
// /ServiceProviderConfig.
var Generic = Profile{MaxMembersPerRequest: 1000, CursorPaging: false, GroupPut: true, Members: MembersAuto,
	RemoveByFilter: true, Discover: true}

// strictPageCap is the most results the old (strict) form of Identity Center returns, without
// paging; a listing of exactly that many without a cursor may be truncated.
const strictPageCap = 50

// Observer is told about every HTTP request a client makes (each attempt), for metrics and the
// bench command: the API ("scim" or "identitystore"), the operation (such as "CreateUser"),
// the HTTP status (0 when none arrived), the duration and the error.
type Observer interface {
	ObserveRequest(api, op string, status int, d time.Duration, err error)
}

// Config configures a Client.
type Config struct {
	// BaseURL is the SCIM base URL, ending in /scim/v2 for Identity Center.
	BaseURL string
	// Token returns the bearer token; it is called for every request, so a rotated token is
	// picked up. It is never logged nor part of an error.
	Token func(ctx context.Context) (string, error)
	// HTTPClient is used for requests; nil means a client with timeouts and verified TLS.
	HTTPClient *http.Client
	// Profile is what the target supports; the zero value means IdentityCenter.
	Profile Profile
	// Limiter is shared by all requests; nil means no rate limit.
	Limiter *Limiter
	// Retry is the retry policy; zero fields take DefaultRetryPolicy's.
	Retry RetryPolicy
	// Observer, when set, is told about every request.
	Observer Observer
	// Logger receives debug lines about retries; nil discards.
	Logger *slog.Logger
	// UserAgent is sent with every request; "" means "scimbridge".
	UserAgent string
	// ReadConcurrency is how many reads ReadState runs at once; 0 means 8.
	ReadConcurrency int
	// AuthHint is added to a 401 or 403 answer's error: where the token comes from, such as
	// "check target.token". "" means a generic hint.
	AuthHint string
	// UnreachableHint is added to the error when nothing answers at BaseURL (connection
	// refused, unknown host), such as "check target.scim_url". "" means a generic hint.
	UnreachableHint string
	// ProfileHint is added to the error when a target pages in a way the profile does not
	// expect, such as "set target.profile: generic". "" means a generic hint.
	ProfileHint string
}

// unreachableWindow: a refused connection (or an unknown host) is retried by the retry policy
// only when the target answered less than this long ago (a restart in the middle of a run); at
// the start of a run it is retried once, and the run fails in a second instead of 20.
const unreachableWindow = time.Minute

// Client is a SCIM 2.0 client for one target. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	token   func(ctx context.Context) (string, error)
	http    *http.Client
	profile Profile
	retry   retrier
	log     *slog.Logger
	ua      string
	readC   int

	authHint, unreachableHint, profileHint string
	lastAnswer                             atomic.Int64 // unix nanoseconds of the last HTTP answer, 0: none yet

	discoverMu sync.Mutex
	discovered *discovered // nil until read (or not to be read)
}

// New returns a client for the target in cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("scim: base url: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("scim: base url %q: want an absolute http(s) url", u.Redacted())
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("scim: base url %q: must not carry credentials, a query or a fragment", u.Redacted())
	}
	if cfg.Token == nil {
		return nil, errors.New("scim: no token source configured")
	}
	c := &Client{
		base:    u,
		token:   cfg.Token,
		http:    cfg.HTTPClient,
		profile: cfg.Profile,
		log:     cfg.Logger,
		ua:      cfg.UserAgent,
		readC:   cfg.ReadConcurrency,
		retry:   retrier{policy: cfg.Retry.withDefaults(), limiter: cfg.Limiter, observer: cfg.Observer},

		authHint:        cfg.AuthHint,
		unreachableHint: cfg.UnreachableHint,
		profileHint:     cfg.ProfileHint,
	}
	if c.profileHint == "" {
		c.profileHint = "use the generic profile"
	}
	if c.authHint == "" {
		c.authHint = "check the bearer token the target was given"
	}
	if c.unreachableHint == "" {
		c.unreachableHint = "check the target's URL, and that it is up"
	}
	c.retry.failFast = func(err error) bool {
		last := c.lastAnswer.Load()
		return isUnreachable(err) && (last == 0 || time.Since(time.Unix(0, last)) > unreachableWindow)
	}
	if c.profile == (Profile{}) {
		c.profile = IdentityCenter
	}
	if c.profile.MaxMembersPerRequest <= 0 {
		c.profile.MaxMembersPerRequest = 100
	}
	if c.profile.MaxPageSize <= 0 && !c.profile.Discover {
		c.profile.MaxPageSize = 100
	}
	if c.http == nil {
		c.http = DefaultHTTPClient()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ua == "" {
		c.ua = "scimbridge"
	}
	if c.readC <= 0 {
		c.readC = 8
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		c.log.Warn("scim target is not https: the token travels in clear text", "host", u.Host)
	}
	return c, nil
}

// DefaultHTTPClient returns the HTTP client used when none is configured: verified TLS 1.2+,
// a 60 s overall timeout per attempt, and enough idle connections for concurrent requests.
func DefaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.MaxIdleConns = 64
	t.MaxIdleConnsPerHost = 64
	t.ResponseHeaderTimeout = 45 * time.Second
	return &http.Client{Timeout: 60 * time.Second, Transport: t}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scimError is the error body of a SCIM target; Identity Center sends status as a string.
type scimError struct {
	Detail             string          `json:"detail"`
	Status             json.RawMessage `json:"status"`
	ExceptionRequestID string          `json:"exceptionRequestId"`
	ScimType           string          `json:"scimType"`
}

const maxErrorBody = 64 << 10

// call makes one logical request (with retries): method on path (relative to the base URL) with
// query, body marshalled as JSON when not nil, and the answer decoded into out when not nil.
// op names the request for errors and the observer.
func (c *Client) call(ctx context.Context, op, method, path string, query url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("scim: %s: encode request: %w", op, err)
		}
	}
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	target := u.String()
	desc := method + " " + path
	err := c.retry.do(ctx, "scim", op, func(ctx context.Context) (int, error) {
		return c.attempt(ctx, desc, method, target, payload, out)
	})
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			return err
		}
		if isUnreachable(err) {
			return fmt.Errorf("scim: %s: %w: nothing answers there; %s", desc, err, c.unreachableHint)
		}
		return fmt.Errorf("scim: %s: %w", desc, err)
	}
	return nil
}

func (c *Client) attempt(ctx context.Context, desc, method, target string, payload []byte, out any) (int, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return 0, fmt.Errorf("get token: %w", err)
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/scim+json, application/json")
	req.Header.Set("User-Agent", c.ua)
	if payload != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error carries the URL, which holds no secret; the token is in a header.
		return 0, err
	}
	defer resp.Body.Close()
	c.lastAnswer.Store(time.Now().UnixNano())
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		ae := &APIError{Op: desc, Status: resp.StatusCode, RequestID: resp.Header.Get("X-Amzn-Requestid"),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		var se scimError
		if json.Unmarshal(raw, &se) == nil {
			ae.Detail = se.Detail
			if se.ExceptionRequestID != "" {
				ae.RequestID = se.ExceptionRequestID
			}
		} else if len(raw) > 0 && len(raw) < 512 {
			ae.Detail = strings.TrimSpace(string(raw))
		}
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			ae.Code = "ThrottlingException"
		case http.StatusUnauthorized, http.StatusForbidden:
			ae.Hint = "the target did not accept the token; " + c.authHint
		}
		if ae.throttled() || resp.StatusCode >= 500 {
			c.log.Debug("scim request failed, may retry", "op", desc, "status", resp.StatusCode, "retry_after", ae.RetryAfter)
		}
		return resp.StatusCode, ae
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		// A cut-off body is a network failure (retryable); anything else is not.
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return resp.StatusCode, fmt.Errorf("decode answer: %w", err)
		}
		return resp.StatusCode, &APIError{Op: desc, Status: resp.StatusCode, Detail: "undecodable answer: " + err.Error()}
	}
	return resp.StatusCode, nil
}

// filterEq builds the SCIM filter `attr eq "value"`, escaping value as a SCIM string literal
// (backslash and double quote, and control characters), so no value can change the filter.
func filterEq(attr, value string) string {
	// A JSON string is a SCIM string literal (RFC 7644 3.4.2.2 refers to RFC 7159 strings).
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(value) // a string always encodes
	return attr + " eq " + strings.TrimSuffix(b.String(), "\n")
}
