// Command scimbridge keeps a workforce directory (Active Directory / LDAP, Google Workspace or a
// YAML file) and AWS IAM Identity Center in step over SCIM.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // a dry-run found changes
	exitBlocked = 3 // a safety guard blocked the run
)

// codeError carries a specific process exit code up to main.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "scimbridge",
		Short:         "Sync a workforce directory into AWS IAM Identity Center over SCIM",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newSyncCmd(),
		newCheckCmd(),
		newBenchCmd(),
		newMappingCmd(),
		newEmulatorCmd(),
		newServeCmd(),
		newHealthcheckCmd(),
	)
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
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
