// Package awssecret reads aws-secretsmanager:// and aws-ssm:// secret references with the AWS
// SDK, as a secret.Backend. It lives apart from package secret so that secret, and the
// connectors that resolve their credentials through it (ldap, google), import no AWS package;
// the program wires it into its secret.Resolver:
//
//	secret.NewResolver(secret.ResolverOptions{Backends: awssecret.Backends(awssecret.Options{})})
//
// The Resolver does the caching, the timeout, the #json-key and the empty-value check; a Backend
// only fetches the stored value.
package awssecret

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

// Options configures the AWS backends. The zero value takes the AWS configuration from the
// environment (credentials chain, AWS_REGION) as every AWS SDK does.
type Options struct {
	// AWSConfig returns the AWS configuration for a region ("" for the environment's); default
	// config.LoadDefaultConfig. Tests point BaseEndpoint at a fake here.
	AWSConfig func(ctx context.Context, region string) (aws.Config, error)
}

// Backend fetches Secrets Manager secrets and SSM parameters (SecureStrings decrypted), with one
// SDK client per service and region. It is safe for concurrent use.
type Backend struct {
	o Options

	mu  sync.Mutex
	sm  map[string]*secretsmanager.Client // by region
	ssm map[string]*ssm.Client
}

// New returns a Backend with o's defaults filled in.
func New(o Options) *Backend {
	if o.AWSConfig == nil {
		o.AWSConfig = func(ctx context.Context, region string) (aws.Config, error) {
			var opts []func(*awsconfig.LoadOptions) error
			if region != "" {
				opts = append(opts, awsconfig.WithRegion(region))
			}
			return awsconfig.LoadDefaultConfig(ctx, opts...)
		}
	}
	return &Backend{o: o, sm: map[string]*secretsmanager.Client{}, ssm: map[string]*ssm.Client{}}
}

// Backends returns one Backend registered for both AWS schemes, for secret.ResolverOptions.
func Backends(o Options) map[string]secret.Backend {
	b := New(o)
	return map[string]secret.Backend{secret.SchemeSecretsManager: b, secret.SchemeSSM: b}
}

// Fetch implements secret.Backend.
func (b *Backend) Fetch(ctx context.Context, ref secret.Ref) (string, error) {
	switch ref.Scheme {
	case secret.SchemeSecretsManager:
		c, err := b.smClient(ctx, ref.Region)
		if err != nil {
			return "", err
		}
		out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(ref.Name)})
		if err != nil {
			var nf *smtypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				return "", fmt.Errorf("%w: %w", secret.ErrNotFound, err)
			}
			return "", err
		}
		switch {
		case out.SecretString != nil:
			return *out.SecretString, nil
		case out.SecretBinary != nil:
			return string(out.SecretBinary), nil
		}
		return "", nil
	case secret.SchemeSSM:
		c, err := b.ssmClient(ctx, ref.Region)
		if err != nil {
			return "", err
		}
		out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(ref.Name), WithDecryption: aws.Bool(true)})
		if err != nil {
			var nf *ssmtypes.ParameterNotFound
			if errors.As(err, &nf) {
				return "", fmt.Errorf("%w: %w", secret.ErrNotFound, err)
			}
			return "", err
		}
		if out.Parameter != nil && out.Parameter.Value != nil {
			return *out.Parameter.Value, nil
		}
		return "", nil
	}
	return "", fmt.Errorf("%w: unknown scheme %q", secret.ErrBadRef, ref.Scheme)
}

func (b *Backend) awsConfig(ctx context.Context, region string) (aws.Config, error) {
	cfg, err := b.o.AWSConfig(ctx, region)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if region != "" {
		cfg.Region = region
	}
	return cfg, nil
}

func (b *Backend) smClient(ctx context.Context, region string) (*secretsmanager.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.sm[region]; c != nil {
		return c, nil
	}
	cfg, err := b.awsConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	c := secretsmanager.NewFromConfig(cfg)
	b.sm[region] = c
	return c, nil
}

func (b *Backend) ssmClient(ctx context.Context, region string) (*ssm.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.ssm[region]; c != nil {
		return c, nil
	}
	cfg, err := b.awsConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	c := ssm.NewFromConfig(cfg)
	b.ssm[region] = c
	return c, nil
}
