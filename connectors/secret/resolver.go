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

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

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

// ResolverOptions configures a Resolver. The zero value is usable: the AWS configuration comes
// from the environment (credentials chain, AWS_REGION) as for every AWS SDK.
type ResolverOptions struct {
	// TTL is how long an AWS value is reused; default DefaultTTL.
	TTL time.Duration
	// MaxStale is how long past its TTL a value is still served when a refresh fails; default
	// DefaultMaxStale, negative to never serve a stale value.
	MaxStale time.Duration
	// Timeout bounds each AWS call; default DefaultTimeout.
	Timeout time.Duration
	// AWSConfig returns the AWS configuration for a region ("" for the environment's); default
	// config.LoadDefaultConfig. Tests point BaseEndpoint at a fake here.
	AWSConfig func(ctx context.Context, region string) (aws.Config, error)
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
	sm      map[string]*secretsmanager.Client // by region
	ssm     map[string]*ssm.Client
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
	if o.AWSConfig == nil {
		o.AWSConfig = func(ctx context.Context, region string) (aws.Config, error) {
			var opts []func(*awsconfig.LoadOptions) error
			if region != "" {
				opts = append(opts, awsconfig.WithRegion(region))
			}
			return awsconfig.LoadDefaultConfig(ctx, opts...)
		}
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
	return &Resolver{o: o, entries: map[string]*entry{}, sm: map[string]*secretsmanager.Client{}, ssm: map[string]*ssm.Client{}}
}

// Resolve returns the value of a secret given inline or through a file. field names the config
// key for messages; giving both, or a file that cannot be read, is an error that names the field
// and the file but never the value. A trailing newline in the file is dropped. An inline value
// that is a reference (aws-secretsmanager://, aws-ssm://, file://, env://; see Ref) is fetched;
// one that looks like a reference but is none is an error (see CheckValue). Errors name the field
// and the reference, never a value.
//
// A nil Resolver resolves with the zero ResolverOptions and caches nothing: there is no
// process-wide Resolver; the program makes one and passes it to whatever resolves secrets.
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

// Fetches counts the AWS calls made so far (for tests and figures).
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
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	r.fetches.Add(1)
	var doc string
	switch ref.Scheme {
	case SchemeSecretsManager:
		c, err := r.smClient(ctx, ref.Region)
		if err != nil {
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(ref.Name)})
		if err != nil {
			var nf *smtypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				return "", fmt.Errorf("%s: %w: %w", ref, ErrNotFound, err)
			}
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		switch {
		case out.SecretString != nil:
			doc = *out.SecretString
		case out.SecretBinary != nil:
			doc = string(out.SecretBinary)
		}
	case SchemeSSM:
		c, err := r.ssmClient(ctx, ref.Region)
		if err != nil {
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(ref.Name), WithDecryption: aws.Bool(true)})
		if err != nil {
			var nf *ssmtypes.ParameterNotFound
			if errors.As(err, &nf) {
				return "", fmt.Errorf("%s: %w: %w", ref, ErrNotFound, err)
			}
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		if out.Parameter != nil && out.Parameter.Value != nil {
			doc = *out.Parameter.Value
		}
	default:
		return "", fmt.Errorf("%w: unknown scheme %q", ErrBadRef, ref.Scheme)
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

func (r *Resolver) awsConfig(ctx context.Context, region string) (aws.Config, error) {
	cfg, err := r.o.AWSConfig(ctx, region)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if region != "" {
		cfg.Region = region
	}
	return cfg, nil
}

func (r *Resolver) smClient(ctx context.Context, region string) (*secretsmanager.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.sm[region]; c != nil {
		return c, nil
	}
	cfg, err := r.awsConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	c := secretsmanager.NewFromConfig(cfg)
	r.sm[region] = c
	return c, nil
}

func (r *Resolver) ssmClient(ctx context.Context, region string) (*ssm.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.ssm[region]; c != nil {
		return c, nil
	}
	cfg, err := r.awsConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	c := ssm.NewFromConfig(cfg)
	r.ssm[region] = c
	return c, nil
}
