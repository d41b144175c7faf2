package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/bench"
	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
)

func newBenchAccessCmd() *cobra.Command {
	var (
		o       bench.AccessOptions
		asJSON  bool
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Measure account assignments against the embedded Identity Center's sso-admin API",
		Long: `Starts the embedded Identity Center with a request rate, a limit of outstanding asynchronous
operations and a completion time for each, creates --operations account assignments (groups x accounts
of one permission set) and deletes them again through the same client a sync uses, and prints per
direction the wall time against the limit those settings allow (operations x delay / outstanding),
the requests per assignment (its start and its share of the status polls), the throttles and the most
operations outstanding at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if verbose {
				o.Log = newLogger(cmd.ErrOrStderr(), config.Log{}, true)
			}
			rep, err := bench.RunAccess(cmd.Context(), o)
			if rep == nil {
				return err
			}
			return errors.Join(err, writeBenchReport(cmd.OutOrStdout(), rep, asJSON))
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Operations, "operations", 600, "assignments to create, then delete")
	f.IntVar(&o.Accounts, "accounts", 12, "accounts in the organization")
	f.Float64Var(&o.RPS, "rps", 20, "requests per second the sso-admin API allows (negative: unlimited)")
	f.IntVar(&o.MaxOutstanding, "max-outstanding", 10, "asynchronous operations allowed at once")
	f.DurationVar(&o.Delay, "delay", 2*time.Second, "how long each assignment operation takes")
	f.DurationVar(&o.Latency, "latency", 20*time.Millisecond, "latency the embedded Identity Center adds to every request")
	f.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	f.BoolVarP(&verbose, "verbose", "v", false, "log progress")
	return cmd
}
