package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/lambda"
	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/service"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// envLambdaRuntime is set by AWS Lambda in a function's environment: the binary started without
// arguments there runs `scimbridge lambda`.
const envLambdaRuntime = "AWS_LAMBDA_RUNTIME_API"

// envConfigYAML holds a whole config file, for a function whose image carries none: `lambda`
// writes it to a temporary file and loads that.
const envConfigYAML = "SCIMBRIDGE_CONFIG_YAML"

type lambdaFlags struct {
	config     string
	stopMargin time.Duration
	verbose    bool
}

func newLambdaCmd() *cobra.Command {
	var f lambdaFlags
	cmd := &cobra.Command{
		Use:   "lambda",
		Short: "Run as an AWS Lambda function: scheduled syncs and signed webhooks",
		Long: `Serves the AWS Lambda runtime API (started on its own when AWS_LAMBDA_RUNTIME_API is set and
no command is given). An EventBridge scheduled event runs a sync; a Function URL (or API Gateway
HTTP API) request to POST /v1/sync or /v1/webhooks/google is checked like serve's webhooks and runs
the sync it asks for. One run at a time through the state lock. A run stops starting requests
--stop-margin before the invocation's deadline, records how far it got, and the next invocation
continues. The config comes from --config, SCIMBRIDGE_CONFIG, or SCIMBRIDGE_CONFIG_YAML (the file's
content); keep state in PostgreSQL (state.url), since a function has no lasting disk.`,
		Args: cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if yml := os.Getenv(envConfigYAML); yml != "" && !cmd.Flags().Changed("config") {
				p := filepath.Join(os.TempDir(), "scimbridge.yaml")
				if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
					return fmt.Errorf("%s: %w", envConfigYAML, err)
				}
				if err := cmd.Flags().Set("config", p); err != nil {
					return err
				}
			}
			return checkConfigFlag(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, closeAll, err := newLambdaHandler(cmd.Context(), cmd, f)
			if err != nil {
				return err
			}
			defer closeAll()
			awslambda.StartWithOptions(h.Invoke, awslambda.WithContext(cmd.Context()))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", defaultConfig, "config file")
	fl.DurationVar(&f.stopMargin, "stop-margin", 30*time.Second, "stop starting requests this long before the invocation's deadline (at least target.timeout and a commit)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "debug logging")
	return cmd
}

// newLambdaHandler builds the handler over the config: the runtime, its reconciler, the webhook
// checks of serve and the state lock.
func newLambdaHandler(ctx context.Context, cmd *cobra.Command, f lambdaFlags) (*lambda.Handler, func(), error) {
	cfg, err := config.Load(f.config)
	if err != nil {
		return nil, nil, err
	}
	setMemoryLimit()
	log := newLogger(cmd.ErrOrStderr(), cfg.Log, f.verbose)
	secrets := newSecrets(log)
	sc := cfg.Service
	whSecret, err1 := cfg.WebhookSecret(ctx, secrets)
	bearer, err2 := cfg.BearerToken(ctx, secrets)
	if err := errors.Join(err1, err2); err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", f.config, err)
	}
	rt, err := newRuntime(ctx, cfg, log, secrets)
	if err != nil {
		return nil, nil, err
	}
	lock, err := newRunLock(ctx, rt, "lambda", log)
	if err != nil {
		rt.Close()
		return nil, nil, err
	}
	closeAll := func() { lock.Close(); rt.Close() }
	r, err := rt.reconciler(nil, nil)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	h, err := lambda.New(lambda.Config{
		Runner: r,
		Lock:   lock.Acquire,
		Service: service.Config{
			History:               rt.state,
			WebhookSecret:         []byte(whSecret.Reveal()),
			BearerToken:           []byte(bearer.Reveal()),
			AuthFailuresPerMinute: sc.AuthFailuresPerMinute,
			ReplayWindow:          time.Duration(sc.ReplayWindow),
			MaxBodyBytes:          sc.MaxBodyBytes,
			Logger:                log.With("component", "http"),
		},
		Options:    reconcile.RunOptions{AllowDeletes: cfg.Sync.Guards.AllowDeletes},
		StopMargin: f.stopMargin,
		Logger:     log.With("component", "lambda"),
	})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return h, closeAll, nil
}
