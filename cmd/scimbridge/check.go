package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim"
)

func newCheckCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the config and reach the source and the target",
		Long: `Validates the config (every problem at once), reads the source and maps it (counts,
records that would be skipped, three sample users), and reaches the target with the configured
token. Nothing is written. Exit code 0 when everything is reachable, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "config %s: ok\n", cfgPath)
			log := newLogger(io.Discard, cfg.Log, false)
			rt, err := newRuntime(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer rt.Close()
			return runCheck(cmd, rt)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", defaultConfig, "config file")
	return cmd
}

func runCheck(cmd *cobra.Command, rt *app) error {
	ctx := cmd.Context()
	w := cmd.OutOrStdout()
	var failed []error

	fmt.Fprintf(w, "source (%s):\n", rt.cfg.Source.Type)
	if c, ok := rt.source.(connectors.Checker); ok {
		rep, err := c.Check(ctx)
		if err != nil {
			failed = append(failed, fmt.Errorf("source check: %w", err))
			fmt.Fprintf(w, "  check: FAILED: %v\n", err)
		} else {
			fmt.Fprintf(w, "  identity: %s\n", rep.Identity)
			keys := make([]string, 0, len(rep.Details))
			for k := range rep.Details {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "  %s: %s\n", k, rep.Details[k])
			}
		}
	}
	start := time.Now()
	dir, err := rt.source.Read(ctx)
	if err != nil {
		failed = append(failed, fmt.Errorf("source read: %w", err))
		fmt.Fprintf(w, "  read: FAILED: %v\n", err)
	} else {
		snap := rt.mapping.Apply(dir)
		fmt.Fprintf(w, "  read: %d user entries, %d group entries in %s\n", len(dir.Users), len(dir.Groups), time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(w, "  mapped (%s flavour): %d users, %d groups in scope; %d problems\n", rt.mapping.Flavour(), len(snap.Users), len(snap.Groups), len(snap.Skipped))
		for _, p := range snap.Skipped[:min(5, len(snap.Skipped))] {
			fmt.Fprintf(w, "    ? %s\n", p.Error())
		}
		for _, u := range snap.Users[:min(3, len(snap.Users))] {
			fmt.Fprintf(w, "  sample user %s\n", describeUser(u))
		}
	}

	fmt.Fprintf(w, "target (%s):\n", rt.targetDesc)
	if _, err := rt.client.FindUser(ctx, "userName", "scimbridge-check-does-not-exist"); err != nil {
		failed = append(failed, fmt.Errorf("target: %w", err))
		fmt.Fprintf(w, "  SCIM: FAILED: %v\n", err)
	} else {
		fmt.Fprintf(w, "  SCIM: reachable, token accepted\n")
	}
	if rt.reader != scim.StateReader(rt.client) {
		if _, err := rt.reader.ReadState(ctx); err != nil {
			failed = append(failed, fmt.Errorf("identitystore: %w", err))
			fmt.Fprintf(w, "  identitystore: FAILED: %v\n", err)
		} else {
			fmt.Fprintf(w, "  identitystore: reachable\n")
		}
	}
	if err := errors.Join(failed...); err != nil {
		return &codeError{exitError, err}
	}
	fmt.Fprintln(w, "everything reachable")
	return nil
}

func describeUser(u scim.User) string {
	parts := []string{fmt.Sprintf("%s (%s)", u.UserName, u.ExternalID), "displayName=" + u.DisplayName}
	if u.Email != "" {
		parts = append(parts, "email="+u.Email)
	}
	if !u.Active {
		parts = append(parts, "active=false")
	}
	if d := u.Enterprise.Department; d != "" {
		parts = append(parts, "department="+d)
	}
	if m := u.Enterprise.Manager; m != "" {
		parts = append(parts, "manager="+m)
	}
	return strings.Join(parts, " ")
}
