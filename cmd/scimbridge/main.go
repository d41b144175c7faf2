// Command scimbridge keeps a workforce directory (Active Directory / LDAP, Google Workspace or a
// YAML file) and AWS IAM Identity Center in step over SCIM.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // a dry-run found changes
	exitBlocked = 3 // a safety guard blocked the run
	// exitLocked (4, lock.go): another writer holds the state lock.
)

// codeError carries a specific process exit code up to main.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	var memProfile, cpuProfile string
	var stopCPU func()
	root := &cobra.Command{
		Use:           "scimbridge",
		Short:         "Sync a workforce directory into AWS IAM Identity Center over SCIM",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkConfigFlag(cmd); err != nil {
				return err
			}
			if cpuProfile == "" {
				return nil
			}
			f, err := os.Create(cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			stopCPU = func() { pprof.StopCPUProfile(); f.Close() }
			return nil
		},
		PersistentPostRunE: func(*cobra.Command, []string) error {
			if stopCPU != nil {
				stopCPU()
			}
			if memProfile == "" {
				return nil
			}
			f, err := os.Create(memProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			return pprof.Lookup("allocs").WriteTo(f, 0)
		},
	}
	// Profiles for performance work; hidden from the help.
	root.PersistentFlags().StringVar(&memProfile, "memprofile", "", "write an allocation profile to this file")
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	_ = root.PersistentFlags().MarkHidden("memprofile")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.AddCommand(
		newVersionCmd(),
		newSyncCmd(),
		newCheckCmd(),
		newBenchCmd(),
		newMappingCmd(),
		newEmulatorCmd(),
		newServeCmd(),
		newHealthcheckCmd(),
		newStateCmd(),
		newAccessCmd(),
		newLambdaCmd(),
	)
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	if os.Getenv(envLambdaRuntime) != "" && len(os.Args) == 1 {
		root.SetArgs([]string{"lambda"}) // started by AWS Lambda: the image's entry point alone
	}
	err := root.ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		if ce.err != nil {
			fmt.Fprintln(os.Stderr, "scimbridge:", ce.err)
		}
		return ce.code
	}
	fmt.Fprintln(os.Stderr, "scimbridge:", err)
	return exitError
}
