package bench

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/connectors/google/googletest"
)

// TestFreshnessHarness runs the freshness bench against a server the test fixtures start:
//
//	SCIMBRIDGE_FRESHNESS=slapd  go test -run TestFreshnessHarness -timeout 40m -v ./cmd/scimbridge/internal/bench/
//	SCIMBRIDGE_FRESHNESS=ad     ...   (the Samba AD DC on ports 389/636/88: never beside the LDAP connector's tests)
//	SCIMBRIDGE_FRESHNESS=google ...   (the Google fake; _GOOGLE_LAG sets its reporting lag, default 2m)
//
// SCIMBRIDGE_FRESHNESS_CHANGES (100), _SPREAD (3m), _QUIET (10m), _USERS (1000) and
// _WINDOW (serve's default, 2s) change the run. `scimbridge bench freshness` measures the file
// source the same way without a test binary.
func TestFreshnessHarness(t *testing.T) {
	which := os.Getenv("SCIMBRIDGE_FRESHNESS")
	if which == "" {
		t.Skip("set SCIMBRIDGE_FRESHNESS=slapd, ad or google to run the freshness bench against that server")
	}
	o := FreshnessOptions{
		Source:      which,
		Spec:        Spec{Users: envInt(t, "SCIMBRIDGE_FRESHNESS_USERS", 1000), Groups: 100, Seed: 1},
		Changes:     envInt(t, "SCIMBRIDGE_FRESHNESS_CHANGES", 100),
		Spread:      envDur(t, "SCIMBRIDGE_FRESHNESS_SPREAD", 3*time.Minute),
		Quiet:       envDur(t, "SCIMBRIDGE_FRESHNESS_QUIET", 10*time.Minute),
		BatchWindow: envDur(t, "SCIMBRIDGE_FRESHNESS_WINDOW", 0),
		RPS:         20,
		Latency:     20 * time.Millisecond,
		Dir:         t.TempDir(),
	}
	o.Spec.Memberships = o.Spec.Users * 5
	if testing.Verbose() {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	switch which {
	case "slapd":
		o.Driver = newSlapdFresh(t)
	case "ad":
		o.Driver = newSambaFresh(t)
	case "google":
		lag := envDur(t, "SCIMBRIDGE_FRESHNESS_GOOGLE_LAG", googletest.DefaultReportLag)
		o.Driver = newGoogleFresh(t, lag)
		o.Timeout = lag + 2*time.Minute // group changes show only after the report lag
	default:
		t.Fatalf("SCIMBRIDGE_FRESHNESS=%q: want slapd, ad or google (the file source: scimbridge bench freshness)", which)
	}
	o.Binary = buildBinary(t)
	rep, err := RunFreshness(context.Background(), o)
	if err != nil {
		t.Fatalf("%v (serve's log: %s/serve.log)", err, o.Dir)
	}
	_ = rep.WriteTable(os.Stdout)
	if len(rep.Missed) > 0 {
		t.Errorf("%d changes never reached the target: %v", len(rep.Missed), rep.Missed)
	}
	if rep.FinalPlan != 0 || len(rep.FinalChanges) > 0 {
		t.Errorf("a full read after the bench plans %d writes: %v", rep.FinalPlan, rep.FinalChanges)
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

func envDur(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}
