package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
)

// quickstartConfig is the default --config when SCIMBRIDGE_CONFIG is not set: the quickstart's
// example, which exists only in a checkout of scimbridge's repository.
const quickstartConfig = "deploy/examples/scimbridge.yaml"

// checkConfigFlag runs before every subcommand. When a subcommand with --config was not given
// one and the default file does not exist (outside the repository, without SCIMBRIDGE_CONFIG),
// it says how to pass a config instead of failing on a path the person never typed.
func checkConfigFlag(cmd *cobra.Command) error {
	f := cmd.Flags().Lookup("config")
	if f == nil || f.Changed {
		return nil
	}
	if _, err := os.Stat(f.Value.String()); !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or a problem that loading it reports
	}
	if p := os.Getenv("SCIMBRIDGE_CONFIG"); p != "" {
		return fmt.Errorf("SCIMBRIDGE_CONFIG names %s, which does not exist: set it to your config file, or pass --config FILE", p)
	}
	return fmt.Errorf("no config file: pass --config FILE or set SCIMBRIDGE_CONFIG (the default, %s, "+
		"exists only in a checkout of the scimbridge repository: %s --config %s from its root)",
		quickstartConfig, cmd.CommandPath(), quickstartConfig)
}
