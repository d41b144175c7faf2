package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/bench"
	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
)

func newBenchCmd() *cobra.Command {
	var (
		o       bench.Options
		seed    uint64
		asJSON  bool
		phases  string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure syncs of a synthetic directory against the embedded Identity Center",
		Long: `Generates a synthetic directory (a few groups of thousands, many of tens, some nesting;
seeded), starts the embedded Identity Center with a request-rate limit and latency the client is not
told, and runs scimbridge sync as a child process for each phase: the initial sync, a no-change
sync, and a sync after 1% of users changed, 1% moved groups and 0.5% left. For each phase it
reports write requests against the lower bound, reads, 429s, wall time against the time the lower
bound needs at the configured rate, and the sync process's peak RSS and CPU time. The writes and
429s are reported twice, as the sync counted them and as the embedded Identity Center counted them;
the ratio is the target's accepted writes over the lower bound, and the bench fails (after printing
the report) when the two counts disagree on any operation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			o.Binary = exe
			o.Spec.Seed = seed
			if phases != "" {
				o.Phases = strings.Split(phases, ",")
			}
			if verbose {
				o.Log = newLogger(cmd.ErrOrStderr(), config.Log{}, true)
			}
			rep, err := bench.Run(cmd.Context(), o)
			if rep == nil {
				return err
			}
			// A report whose counts disagree is printed too (the disagreement is in it), and the
			// command then fails with the error naming each phase and count.
			return errors.Join(err, writeBenchReport(cmd.OutOrStdout(), rep, asJSON))
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Spec.Users, "users", 10000, "users to generate")
	f.IntVar(&o.Spec.Groups, "groups", 1000, "groups to generate")
	f.IntVar(&o.Spec.Memberships, "memberships", 60000, "direct group memberships to generate")
	f.Float64Var(&o.RPS, "rps", 20, "the embedded Identity Center's request-rate limit per second (0: unlimited)")
	f.DurationVar(&o.Latency, "latency", 20*time.Millisecond, "latency the embedded Identity Center adds to every request")
	f.Uint64Var(&seed, "seed", 1, "seed of the generated directory")
	f.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	f.StringVar(&o.Dir, "dir", "", "keep the generated files in this folder")
	f.StringVar(&phases, "phases", "", "comma-separated phases to report: initial,no-change,churn (default all)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log progress")
	cmd.AddCommand(newBenchAccessCmd())
	cmd.AddCommand(newBenchFreshnessCmd())
	return cmd
}

// writeBenchReport prints a bench report as indented JSON, or as its table.
func writeBenchReport(w io.Writer, rep interface{ WriteTable(io.Writer) error }, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteTable(w)
}
