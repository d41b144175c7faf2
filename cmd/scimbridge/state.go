package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/connectors/secret"
	"github.com/scimbridge/scimbridge/scim/state"
)

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Look after the state store",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newStateUnlockCmd(), newStateMigrateCmd())
	return cmd
}

func newStateUnlockCmd() *cobra.Command {
	var cfgPath string
	var force bool
	cmd := &cobra.Command{
		Use:   "unlock --force",
		Short: "Remove the state store's writer lock when its holder is gone for good",
		Long: `Shows who holds the state store's writer lock and, with --force, removes it: the lock file
beside an SQLite state, or, for a PostgreSQL state, the database session that holds the lock
(pg_terminate_backend).

A lock is released when the process that holds it ends, however it ends, so this is only for the
rare lock that stays: a hung process, a network filesystem that keeps the lock of a host that
vanished, a database session the server has not yet seen die. If the holder is in fact still
running, removing its lock lets a second writer run beside it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			log := newLogger(cmd.ErrOrStderr(), cfg.Log, false)
			loc, err := cfg.StateLocation(cmd.Context(), newSecrets(log))
			if err != nil {
				return err
			}
			name := cfg.StateDescription()
			held, info, known, err := state.Locked(loc)
			if err != nil {
				return err
			}
			who := "an unknown process"
			if known {
				who = info.String()
			}
			switch {
			case !held:
				fmt.Fprintf(w, "%s is not locked; nothing to do.\n", name)
				return nil
			case !force:
				return fmt.Errorf("%s is locked by %s; if that process is gone for good, re-run with --force", name, who)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: removing the lock held by %s. If that process is still running, "+
				"a second writer can now run beside it; stop it first if you can.\n", who)
			if err := state.ForceUnlock(loc); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s: lock removed.\n", name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", defaultConfig, "config file")
	cmd.Flags().BoolVar(&force, "force", false, "remove the lock even though a process holds it")
	return cmd
}

type migrateFlags struct {
	config, from, to string
	force            bool
}

func newStateMigrateCmd() *cobra.Command {
	var f migrateFlags
	cmd := &cobra.Command{
		Use:   "migrate --to postgres://... [--from FILE] [--force]",
		Short: "Copy an SQLite state store into a PostgreSQL database",
		Long: `Copies everything the SQLite state store holds (owned objects of every kind, pending creates,
memberships, meta key/values and feed cursors, unowned objects, the run history) into a
PostgreSQL database in one transaction, then reads both back and compares every table. The
source is the configuration's state.path (or --from); --to is the database URL, or a secret
reference to it (env://VAR, file:///path, aws-secretsmanager://NAME, aws-ssm:///path) so that the
password stays out of the shell history. Both stores' writer locks are held throughout, so no run
writes to either meanwhile. A destination that holds any state is refused unless --force, which
replaces it. Afterwards set state.url to the database and remove state.path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runStateMigrate(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", defaultConfig, "config file (its state.path is the source)")
	fl.StringVar(&f.from, "from", "", "the SQLite state file to copy (default: the config's state.path)")
	fl.StringVar(&f.to, "to", "", "the PostgreSQL database: postgres://user:password@host/db?sslmode=verify-full, or a secret reference to that URL")
	fl.BoolVar(&f.force, "force", false, "replace what the destination holds")
	return cmd
}

func runStateMigrate(cmd *cobra.Command, f migrateFlags) error {
	ctx := cmd.Context()
	if f.to == "" {
		return &codeError{exitError, errors.New("state migrate: --to is required: the PostgreSQL database URL, or a secret reference to it")}
	}
	from := f.from
	log := newLogger(cmd.ErrOrStderr(), config.Log{Level: "warn"}, false)
	if from == "" {
		cfg, err := config.Load(f.config)
		if err != nil {
			return err
		}
		log = newLogger(cmd.ErrOrStderr(), cfg.Log, false)
		if cfg.UsesPostgres() {
			return &codeError{exitError, fmt.Errorf("state migrate: the configuration's state is already PostgreSQL (%s); name the SQLite file to copy with --from", cfg.StateDescription())}
		}
		from = cfg.StatePath()
	}
	to := f.to
	if secret.IsRef(to) {
		v, err := newSecrets(log).Value(ctx, to)
		if err != nil {
			return &codeError{exitError, fmt.Errorf("state migrate: --to: %w", err)}
		}
		to = v.Reveal()
	}
	if !state.IsPostgresURL(to) {
		return &codeError{exitError, errors.New("state migrate: --to is not a postgres:// or postgresql:// URL, nor a secret reference to one (the value is not shown)")}
	}
	dest := state.RedactURL(to)
	if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
		return &codeError{exitError, fmt.Errorf("state migrate: %s does not exist: nothing to copy", from)}
	}

	for _, loc := range []string{from, to} {
		l, err := state.AcquireLock(ctx, loc, lockInfo("state migrate"), 0)
		if errors.Is(err, state.ErrLocked) {
			return &codeError{exitLocked, err}
		}
		if err != nil {
			return err
		}
		defer l.Release()
	}
	src, err := state.Open(ctx, from, state.WithLogger(log))
	if err != nil {
		return err
	}
	defer src.Close()
	if err := src.IntegrityCheck(ctx); err != nil {
		return err
	}
	dst, err := state.OpenPostgres(ctx, to, state.WithLogger(log))
	if err != nil {
		return err
	}
	defer dst.Close()
	d, err := copyState(ctx, src, dst, f.force)
	if err != nil {
		if errors.Is(err, state.ErrNotEmpty) {
			return &codeError{exitError, fmt.Errorf("%w; nothing was copied. Re-run with --force to replace it", err)}
		}
		return err
	}
	kinds := map[state.Kind]int{}
	for _, o := range d.Objects {
		kinds[o.Kind]++
	}
	var owned []string
	for _, k := range []state.Kind{state.KindUser, state.KindGroup} {
		owned = append(owned, fmt.Sprintf("%d %ss", kinds[k], k))
		delete(kinds, k)
	}
	for k, n := range kinds {
		owned = append(owned, fmt.Sprintf("%d %s", n, k))
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "Copied %s into %s: %s, %d memberships, %d pending creates, %d meta keys, %d unowned objects, %d runs.\n",
		from, dest, strings.Join(owned, ", "), len(d.Members), len(d.Pending), len(d.Meta), len(d.Unowned), len(d.Runs))
	fmt.Fprintf(w, "Every table of the two stores compares equal.\nNext: set state.url to the database (a secret reference keeps the password out of the file), remove state.path, and run `scimbridge sync --dry-run`.\n")
	return nil
}

// copyState copies src into dst and compares every table afterwards; it returns what was copied.
func copyState(ctx context.Context, src, dst state.Store, replace bool) (*state.Dump, error) {
	d, err := src.Export(ctx)
	if err != nil {
		return nil, err
	}
	if err := dst.Import(ctx, d, replace); err != nil {
		return nil, err
	}
	got, err := dst.Export(ctx)
	if err != nil {
		return nil, err
	}
	if diff := state.Diff(d, got); diff != nil {
		return nil, fmt.Errorf("state migrate: the copy in %s differs from %s: %s", dst.Location(), src.Location(), strings.Join(diff, "; "))
	}
	return d, nil
}
