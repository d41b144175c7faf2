package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

func newCheckCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the config and reach the source and the target",
		Long: `Validates the config (every problem at once), reads the source and maps it (counts,
records that would be skipped, attributes that records lack, three sample users), and reaches the
target with the configured token; with an access section, makes the sso-admin and organizations
reads a sync starts with (the instance, the permission sets, the organization's accounts). Nothing is written: the state store is not opened, and the
embedded Identity Center, when it is the target, is read from a throw-away copy of its data file.
Exit code 0 when everything is reachable, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "config %s: ok\n", cfgPath)
			log := newLogger(io.Discard, cfg.Log, false)
			rt, err := openForCheck(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer rt.Close()
			for _, line := range rt.mapping.Deprecated() {
				fmt.Fprintf(cmd.OutOrStdout(), "warning: %s\n", line)
			}
			return runCheck(cmd, rt)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", defaultConfig, "config file")
	return cmd
}

// openForCheck opens the source and the target as newRuntime does, but writes nothing: it opens
// no state store (check does not need one), and it starts the embedded Identity Center only on a
// copy of its data file in a temporary directory, or not at all when no sync has made the file.
// rt.client is nil in that last case.
func openForCheck(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *app, err error) {
	rt, err := openSource(ctx, cfg, log, newSecrets(log))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = rt.Close()
		}
	}()
	if cfg.Target.SCIMURL != "" {
		return rt, rt.openTarget(ctx)
	}

	data := cfg.EmbeddedDataFile()
	desc := "the embedded Identity Center (" + data + ")"
	if _, err := os.Stat(data); errors.Is(err, fs.ErrNotExist) {
		rt.targetDesc = desc + ": not created yet; the first sync creates it"
		return rt, nil
	}
	tmp, err := os.MkdirTemp("", "scimbridge-check-")
	if err != nil {
		return nil, fmt.Errorf("embedded identity center: %w", err)
	}
	rt.closers = append(rt.closers, func() error { return os.RemoveAll(tmp) })
	copyFile := filepath.Join(tmp, "identity-center.db")
	for _, suffix := range []string{"", "-wal"} { // SQLite in WAL mode: recent writes live in -wal
		if err := copyIfExists(data+suffix, copyFile+suffix); err != nil {
			return nil, fmt.Errorf("embedded identity center: copy %s: %w", data+suffix, err)
		}
	}
	c := *cfg
	c.Target.Embedded.DataFile = copyFile
	rt.cfg = &c
	err = rt.openTarget(ctx)
	rt.cfg, rt.targetDesc = cfg, desc
	if err != nil {
		return nil, err
	}
	return rt, nil
}

// copyIfExists copies the file src to dst; a missing src is not an error.
func copyIfExists(src, dst string) error {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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
		warnings := rt.mapping.Report(dir, snap).Lines()
		fmt.Fprintf(w, "  read: %d user entries, %d group entries in %s\n", len(dir.Users), len(dir.Groups), time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(w, "  mapped (%s flavour): %d users, %d groups in scope; %d problems, %d warnings\n",
			rt.mapping.Flavour(), len(snap.Users), len(snap.Groups), len(snap.Skipped), len(warnings))
		for _, p := range snap.Skipped[:min(5, len(snap.Skipped))] {
			fmt.Fprintf(w, "    ? %s\n", p.Error())
		}
		for _, line := range warnings {
			fmt.Fprintf(w, "    ! %s\n", line)
		}
		for _, u := range snap.Users[:min(3, len(snap.Users))] {
			fmt.Fprintf(w, "  sample user %s\n", describeUser(u))
		}
	}

	fmt.Fprintf(w, "target (%s):\n", rt.targetDesc)
	if rt.client == nil {
		if rt.cfg.Access != nil {
			fmt.Fprintf(w, "  access: not checked until the first sync creates the embedded Identity Center\n")
		}
		return finishCheck(w, failed)
	}
	if _, err := rt.client.FindUser(ctx, "userName", "scimbridge-check-does-not-exist"); err != nil {
		failed = append(failed, fmt.Errorf("target: %w", err))
		fmt.Fprintf(w, "  SCIM: FAILED: %v\n", err)
	} else {
		fmt.Fprintf(w, "  SCIM: reachable, token accepted\n")
	}
	if rt.reader != reconcile.StateReader(rt.client) {
		if _, err := rt.reader.ReadState(ctx); err != nil {
			failed = append(failed, fmt.Errorf("identitystore: %w", err))
			fmt.Fprintf(w, "  identitystore: FAILED: %v\n", err)
		} else {
			fmt.Fprintf(w, "  identitystore: reachable\n")
		}
	}
	failed = append(failed, checkAccess(ctx, w, rt)...)
	return finishCheck(w, failed)
}

// checkAccess makes the reads a sync's access phase starts with (sso-admin ListInstances and the
// permission sets, organizations DescribeOrganization, ListRoots and the accounts) and reports
// what they found or their exact error (an AccessDenied names the action). It writes nothing,
// and without an access section makes no call.
func checkAccess(ctx context.Context, w io.Writer, rt *app) []error {
	if rt.accessReader == nil {
		return nil
	}
	var failed []error
	inst, err := rt.accessReader.Instance(ctx)
	if err != nil {
		failed = append(failed, fmt.Errorf("access: sso-admin: %w", err))
		fmt.Fprintf(w, "  access sso-admin: FAILED: %v\n", err)
	} else {
		fmt.Fprintf(w, "  access sso-admin: instance %s (identity store %s)\n", inst.ARN, inst.IdentityStoreID)
		sets, err := rt.accessReader.PermissionSets(ctx, inst)
		if err != nil {
			failed = append(failed, fmt.Errorf("access: sso-admin: %w", err))
			fmt.Fprintf(w, "  access permission sets: FAILED: %v\n", err)
		} else {
			defined, _ := rt.cfg.AccessPermissionSets() // valid: the config loaded
			fmt.Fprintf(w, "  access permission sets: %d in the instance, %d defined in the config\n", len(sets), len(defined))
		}
	}
	org, err := rt.accessReader.Organization(ctx)
	if err != nil {
		failed = append(failed, fmt.Errorf("access: organizations: %w", err))
		fmt.Fprintf(w, "  access organizations: FAILED: %v\n", err)
	} else {
		fmt.Fprintf(w, "  access organizations: %d accounts, %d organizational units, management account %s\n",
			len(org.Accounts), len(org.Units), org.ManagementAccountID)
	}
	return failed
}

// finishCheck ends the report: exit code 1 with the failures, or "everything reachable".
func finishCheck(w io.Writer, failed []error) error {
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
