package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/scim/state"
)

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Look after the state store",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newStateUnlockCmd())
	return cmd
}

func newStateUnlockCmd() *cobra.Command {
	var cfgPath string
	var force bool
	cmd := &cobra.Command{
		Use:   "unlock --force",
		Short: "Remove the state store's writer lock when its holder is gone for good",
		Long: `Shows who holds the state store's writer lock and, with --force, removes the lock file.

A lock is released by the system when the process that holds it ends, however it ends, so this
is only for the rare lock that stays: a hung process, or a network filesystem that keeps the lock
of a host that vanished. If the holder is in fact still running, removing its lock lets a second
writer run beside it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			path := cfg.StatePath()
			held, info, known, err := state.Locked(path)
			if err != nil {
				return err
			}
			who := "an unknown process"
			if known {
				who = info.String()
			}
			switch {
			case !held:
				fmt.Fprintf(w, "%s is not locked; nothing to do.\n", path)
				return nil
			case !force:
				return fmt.Errorf("%s is locked by %s; if that process is gone for good, re-run with --force", path, who)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: removing the lock held by %s. If that process is still running, "+
				"a second writer can now run beside it; stop it first if you can.\n", who)
			if err := state.ForceUnlock(path); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s: lock removed.\n", path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", defaultConfig, "config file")
	cmd.Flags().BoolVar(&force, "force", false, "remove the lock even though a process holds it")
	return cmd
}
