package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/bench"
	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
)

func newBenchFreshnessCmd() *cobra.Command {
	var (
		o       bench.FreshnessOptions
		seed    uint64
		asJSON  bool
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "freshness",
		Short: "Measure how fast directory changes reach the target through serve and the source's change feed",
		Long: `Generates a directory (seeded), loads it into the source, syncs it into the embedded Identity
Center, then runs scimbridge serve as a child process with the source's change feed on. It makes
random changes (joiners, leavers, renames, membership moves, users added to nested groups) spread
over --spread, and polls the embedded Identity Center for each until it shows. It prints the p50,
p95 and max change-to-target latency (overall and by kind), the target's requests and serve's
source reads per change, the writes against the lower bound of the plans serve applied, what a
quiet period (--quiet) costs, and whether a full read afterwards (sync --dry-run --full) plans
nothing. Sources: ` + strings.Join(bench.FreshnessSources(), ", ") + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			o.Binary = exe
			o.Spec.Seed = seed
			if verbose {
				o.Log = newLogger(cmd.ErrOrStderr(), config.Log{}, true)
			}
			rep, err := bench.RunFreshness(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			if err := rep.WriteTable(cmd.OutOrStdout()); err != nil {
				return err
			}
			if len(rep.Missed) > 0 || rep.FinalPlan != 0 {
				return &codeError{exitError, fmt.Errorf("bench freshness: %d changes never reached the target; a full read afterwards plans %d writes", len(rep.Missed), rep.FinalPlan)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Source, "source", "file", "source to measure: "+strings.Join(bench.FreshnessSources(), ", "))
	f.IntVar(&o.Spec.Users, "users", 1000, "users to generate")
	f.IntVar(&o.Spec.Groups, "groups", 100, "groups to generate")
	f.IntVar(&o.Spec.Memberships, "memberships", 5000, "direct group memberships to generate")
	f.IntVar(&o.Changes, "changes", 100, "random changes to make")
	f.DurationVar(&o.Spread, "spread", 3*time.Minute, "time the changes are spread over")
	f.DurationVar(&o.Quiet, "quiet", 10*time.Minute, "quiet period measured after the changes")
	f.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "how long to wait for the last change to arrive")
	f.DurationVar(&o.BatchWindow, "batch-window", 0, "serve's service.feed.batch_window (default: serve's, 2s)")
	f.Float64Var(&o.RPS, "rps", 20, "the embedded Identity Center's request-rate limit per second (0: unlimited)")
	f.DurationVar(&o.Latency, "latency", 20*time.Millisecond, "latency the embedded Identity Center adds to every request")
	f.Uint64Var(&seed, "seed", 1, "seed of the generated directory and changes")
	f.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	f.StringVar(&o.Dir, "dir", "", "keep the generated files (config, source data, serve.log) in this folder")
	f.StringArrayVar(&o.ServeArgs, "serve-arg", nil, "one more argument for serve (repeat it), such as --serve-arg=--cpuprofile=serve.cpu to profile serve")
	f.BoolVarP(&verbose, "verbose", "v", false, "log progress")
	return cmd
}
