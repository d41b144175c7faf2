package secret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoBackend is wrapped when a reference names a scheme (aws-secretsmanager://, aws-ssm://)
// that no Backend of the Resolver serves.
var ErrNoBackend = errors.New("no backend reads this kind of secret reference")

// Backend fetches the value a reference of a remote scheme (aws-secretsmanager://, aws-ssm://)
// names, as stored: the Resolver caches it, picks the #json-key out of it and rejects an empty
// value. Package connectors/secret/awssecret holds the AWS backends, so that this package, and the
// connectors that import it, carry no AWS SDK; the program wires them in.
type Backend interface {
	// Fetch returns the stored value of ref (ref.Scheme is one the Backend is registered for).
	// An error wraps ErrNotFound when the secret or parameter does not exist, and never holds a
	// value; the Resolver prefixes it with the reference.
	Fetch(ctx context.Context, ref Ref) (string, error)
}

// Defaults of ResolverOptions.
const (
	// DefaultTTL is how long a value fetched from AWS is reused: a rotated SCIM token is picked
	// up within this time, and a SCIM client asking for its token on every request makes at most
	// one AWS call per TTL.
	DefaultTTL = time.Minute
	// DefaultMaxStale is how long past its TTL a value is still served when refreshing it fails
	// for another reason than "not found" (AWS unreachable, throttled).
	DefaultMaxStale = time.Hour
	// DefaultTimeout bounds each AWS call.
	DefaultTimeout = 10 * time.Second
)

// ResolverOptions configures a Resolver. The zero value is usable for file:// and env://
// references; aws-secretsmanager:// and aws-ssm:// need their Backends (awssecret.Backends).
type ResolverOptions struct {
	// Backends fetch remote references, by scheme (SchemeSecretsManager, SchemeSSM). A
	// reference whose scheme has none fails with ErrNoBackend.
	Backends map[string]Backend
	// TTL is how long an AWS value is reused; default DefaultTTL.
	TTL time.Duration
	// MaxStale is how long past its TTL a value is still served when a refresh fails; default
	// DefaultMaxStale, negative to never serve a stale value.
	MaxStale time.Duration
	// Timeout bounds each backend (AWS) call; default DefaultTimeout.
	Timeout time.Duration
	// LookupEnv reads env:// references; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Logger gets a warning when a stale value is served; default: discarded.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Resolver fetches the values of secret references. AWS values are cached for a TTL (per
// reference, one fetch at a time); file:// and env:// are read on every call, so a file that
// Kubernetes rewrites on rotation is picked up at once. It is safe for concurrent use.
type Resolver struct {
	o ResolverOptions

	mu      sync.Mutex
	entries map[string]*entry
	fetches atomic.Int64
}

type entry struct {
	mu  sync.Mutex
	val Secret
	at  time.Time
	ok  bool
}

// NewResolver returns a Resolver with o's defaults filled in.
func NewResolver(o ResolverOptions) *Resolver {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxStale == 0 {
		o.MaxStale = DefaultMaxStale
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Resolver{o: o, entries: map[string]*entry{}}
}

// Resolve returns the value of a secret given inline or through a file. field names the config
// key for messages; giving both, or a file that cannot be read, is an error that names the field
// and the file but never the value. A trailing newline in the file is dropped. An inline value
// that is a reference (aws-secretsmanager://, aws-ssm://, file://, env://; see Ref) is fetched;
// one that looks like a reference but is none is an error (see CheckValue). Errors name the field
// and the reference, never a value.
//
// A nil Resolver resolves with the zero ResolverOptions (no backends) and caches nothing: there
// is no process-wide Resolver; the program makes one and passes it to whatever resolves secrets.
func (r *Resolver) Resolve(ctx context.Context, field string, inline Secret, file string) (Secret, error) {
	if r == nil {
		r = NewResolver(ResolverOptions{})
	}
	switch {
	case inline != "" && file != "":
		return "", fmt.Errorf("%s and %s_file are both set; use one", field, field)
	case file != "":
		return readFile(field+"_file", file)
	}
	if err := CheckValue(string(inline)); err != nil {
		return "", fmt.Errorf("%s: %w (a literal value that starts this way goes in %s_file)", field, err, field)
	}
	if !IsRef(string(inline)) {
		return inline, nil
	}
	s, err := r.Value(ctx, string(inline))
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return s, nil
}

// Value returns the value a reference names.
func (r *Resolver) Value(ctx context.Context, reference string) (Secret, error) {
	ref, err := ParseRef(reference)
	if err != nil {
		return "", err
	}
	switch ref.Scheme {
	case SchemeFile:
		return readFile(ref.String(), ref.Name)
	case SchemeEnv:
		v, ok := r.o.LookupEnv(ref.Name)
		if !ok {
			return "", fmt.Errorf("%s: environment variable is not set: %w", ref, ErrNotFound)
		}
		return Secret(v), nil
	}
	return r.cached(ctx, ref)
}

// Fetches counts the backend (AWS) calls made so far (for tests and figures).
func (r *Resolver) Fetches() int64 { return r.fetches.Load() }

func readFile(what, path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return Secret(strings.TrimRight(string(b), "\r\n")), nil
}

func (r *Resolver) cached(ctx context.Context, ref Ref) (Secret, error) {
	key := ref.String()
	r.mu.Lock()
	e := r.entries[key]
	if e == nil {
		e = &entry{}
		r.entries[key] = e
	}
	r.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := r.o.Now()
	if e.ok && now.Sub(e.at) < r.o.TTL {
		return e.val, nil
	}
	v, err := r.fetch(ctx, ref)
	if err != nil {
		if e.ok && !errors.Is(err, ErrNotFound) && r.o.MaxStale > 0 && now.Sub(e.at) < r.o.TTL+r.o.MaxStale {
			r.o.Logger.Warn("secret refresh failed; using the last value", "ref", key,
				"age", now.Sub(e.at).Round(time.Second).String(), "error", err.Error())
			return e.val, nil
		}
		return "", err
	}
	e.val, e.at, e.ok = v, now, true
	return v, nil
}

func (r *Resolver) fetch(ctx context.Context, ref Ref) (Secret, error) {
	b := r.o.Backends[ref.Scheme]
	if b == nil {
		return "", fmt.Errorf("%s: %w: this program was built or configured without the %s:// backend", ref, ErrNoBackend, ref.Scheme)
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	r.fetches.Add(1)
	doc, err := b.Fetch(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	if ref.Key != "" {
		v, err := pickKey(doc, ref.Key)
		if err != nil {
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		doc = v
	}
	if doc == "" {
		return "", fmt.Errorf("%s: the value is empty", ref)
	}
	return Secret(doc), nil
}
