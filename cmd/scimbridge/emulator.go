package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

func newEmulatorCmd() *cobra.Command {
	var (
		listen, data, token, tenant string
		rps                         float64
		latency                     time.Duration
		strict                      bool
		access                      emulator.AccessOptions
	)
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Serve an IAM Identity Center look-alike (SCIM, identitystore, sso-admin, organizations) on this machine",
		Long: `Serve an IAM Identity Center look-alike: a SCIM 2.0 endpoint at /<tenant>/scim/v2, the
identitystore API, and the sso-admin and organizations APIs (an organization of --accounts accounts in
OUs, permission sets, account assignments that complete after --access-delay), over a SQLite file (or
memory). The token, tenant, identity store id, organization, permission sets and assignments are kept
in the data file, so a restart on the same file keeps them (and ignores --accounts).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			emu, err := emulator.New(emulator.Options{
				Tenant: tenant, Token: token, DataPath: data, Strict: strict,
				RateLimit: rps, Latency: latency, Logger: logger, Access: access,
			})
			if err != nil {
				return err
			}
			defer emu.Close()
			return serveEmulator(cmd.Context(), cmd, emu, listen)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "address to listen on")
	f.StringVar(&data, "data", "", "SQLite data file (empty: in memory, lost on exit)")
	f.StringVar(&token, "token", "", "SCIM bearer token (default: the stored one, or a new random one)")
	f.StringVar(&tenant, "tenant", "", "tenant id in the SCIM path (default: the stored one, or a new one)")
	f.Float64Var(&rps, "rps", 0, "requests per second allowed per API before 429 / ThrottlingException (0: unlimited)")
	f.DurationVar(&latency, "latency", 0, "latency added to every request")
	f.BoolVar(&strict, "strict", false, "act out the older Identity Center: at most 50 results per list, no paging")
	f.IntVar(&access.Accounts, "accounts", emulator.DefaultAccounts, "AWS accounts in the organization made on first start, the management account included")
	f.DurationVar(&access.CompletionDelay, "access-delay", emulator.DefaultCompletionDelay, "how long an account assignment or provisioning stays IN_PROGRESS (negative: until the next request)")
	f.IntVar(&access.MaxOutstanding, "max-outstanding", emulator.DefaultMaxOutstanding, "asynchronous operations allowed IN_PROGRESS at once before ThrottlingException (negative: no limit)")
	f.Float64Var(&access.RateLimit, "admin-rps", emulator.DefaultAdminRateLimit, "requests per second the sso-admin and organizations APIs share before throttling (negative: unlimited)")
	return cmd
}

func serveEmulator(ctx context.Context, cmd *cobra.Command, emu *emulator.Emulator, listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("emulator: listen on %s: %w", listen, err)
	}
	base := "http://" + ln.Addr().String()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "SCIM endpoint:          %s%s\n", base, emu.SCIMPath())
	fmt.Fprintf(out, "SCIM token:             %s\n", emu.Token())
	fmt.Fprintf(out, "identitystore endpoint: %s%s\n", base, emu.IdentityStorePath())
	fmt.Fprintf(out, "identity store id:      %s\n", emu.IdentityStoreID())
	fmt.Fprintf(out, "sso-admin endpoint:     %s%s\n", base, emu.SSOAdminPath())
	fmt.Fprintf(out, "organizations endpoint: %s%s\n", base, emu.OrganizationsPath())
	fmt.Fprintf(out, "instance:               %s (%d accounts)\n", emu.InstanceARN(), len(emu.AccountIDs()))
	fmt.Fprintf(out, "stats:                  %s%s (same bearer token)\n", base, emulator.StatsPath)

	srv := &http.Server{Handler: emu.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("emulator: serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("emulator: shut down: %w", err)
	}
	return nil
}
