package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// FreshnessOptions configure `scimbridge bench freshness`.
type FreshnessOptions struct {
	// Source is the source kind to measure: "file" (see freshSources).
	Source string
	Spec   Spec
	// Changes is how many random changes to make, spread evenly (with jitter) over Spread.
	Changes int
	Spread  time.Duration
	// Quiet is the quiet period measured after the changes arrived.
	Quiet time.Duration
	// Timeout bounds the wait for the last change to arrive; default 2 minutes.
	Timeout time.Duration
	// RPS and Latency shape the embedded Identity Center as in the sync bench.
	RPS     float64
	Latency time.Duration
	// BatchWindow is serve's service.feed.batch_window; 0 keeps the default (2s).
	BatchWindow time.Duration
	// ServeArgs are more arguments for serve (such as --cpuprofile for performance work).
	ServeArgs []string
	// Driver, when set, is the source to measure instead of the one Source names (the test
	// harnesses pass LDAP, Active Directory and Google drivers).
	Driver FreshSource
	Binary string
	Dir    string
	Log    *slog.Logger
}

// FreshnessReport is what the freshness bench measured.
type FreshnessReport struct {
	Source        string  `json:"source"`
	Users         int     `json:"users"`
	Groups        int     `json:"groups"`
	Memberships   int     `json:"memberships"`
	Changes       int     `json:"changes"`
	SpreadSeconds float64 `json:"spreadSeconds"`
	// Latency is change-to-target, from the source's change to the first poll of the target that
	// showed it, in seconds; ByKind splits it by change kind.
	Latency LatencyStats            `json:"latency"`
	ByKind  map[string]LatencyStats `json:"byKind"`
	// Missed lists changes the target never showed within the timeout.
	Missed []string `json:"missed,omitempty"`
	// During the changes: the target's requests (reads and writes, by its own count), the lower
	// bound of the plans serve applied, serve's runs and its reads of the source.
	TargetRequests       int64   `json:"targetRequests"`
	TargetWrites         int64   `json:"targetWrites"`
	LowerBound           int64   `json:"lowerBound"`
	Runs                 int64   `json:"runs"`
	FullSourceReads      int64   `json:"fullSourceReads"`
	TargetedSourceReads  int64   `json:"targetedSourceReads"`
	TargetRequestsPerChg float64 `json:"targetRequestsPerChange"`
	SourceReadsPerChange float64 `json:"sourceReadsPerChange"`
	// SourceRequests are the protocol requests serve made of the source during the changes and
	// the quiet period, where the driver counts them (-1 where it does not).
	SourceRequests          int64   `json:"sourceRequests"`
	SourceRequestsPerChange float64 `json:"sourceRequestsPerChange"`
	QuietSourceRequests     int64   `json:"quietSourceRequests"`
	// The quiet period: its length, the target's requests and serve's runs and source reads.
	QuietSeconds        float64 `json:"quietSeconds"`
	QuietTargetRequests int64   `json:"quietTargetRequests"`
	QuietRuns           int64   `json:"quietRuns"`
	QuietSourceReads    int64   `json:"quietSourceReads"`
	// FinalPlan is the lower bound of what a full read (sync --dry-run --full) planned after the
	// bench: 0 when serve left the target equal to what a full sync produces.
	FinalPlan    int            `json:"finalPlan"`
	FinalChanges map[string]int `json:"finalChanges,omitempty"`
}

// LatencyStats are percentiles of change-to-target latency in seconds.
type LatencyStats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

func latencyStats(ds []time.Duration) LatencyStats {
	if len(ds) == 0 {
		return LatencyStats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)].Seconds()
	}
	return LatencyStats{N: len(s), P50: at(0.5), P95: at(0.95), Max: s[len(s)-1].Seconds()}
}

// FreshSource is a source the freshness bench drives.
type FreshSource interface {
	// Setup loads the generated directory into the source and returns the config's source
	// section (YAML, indented under "source:"). serveAddr is where serve will listen (for a
	// source that pushes to its webhooks).
	Setup(ctx context.Context, d *Directory, dir, serveAddr string) (string, error)
	// Apply makes the change c (already made to d) in the source.
	Apply(ctx context.Context, d *Directory, c *FreshChange) error
	// ExternalID maps a generated id (u-0000042, g-00003) to the externalId the source gives
	// the entry (its entryUUID, objectGUID, Google id).
	ExternalID(id string) string
	Close() error
}

// SourceRequestCounter is implemented by drivers that count the requests serve makes of the
// source (the LDAP harnesses put a counting proxy in front of the server).
type SourceRequestCounter interface {
	SourceRequests() int64
}

// freshSources are the sources the command knows, by name. The LDAP, Active Directory and
// Google variants need servers that test fixtures start; they are harnesses in the package's
// tests (fresh_harness_test.go), passed in FreshnessOptions.Driver.
var freshSources = map[string]func(o FreshnessOptions) FreshSource{
	"file": func(FreshnessOptions) FreshSource { return &fileFresh{} },
}

// FreshnessSources lists the sources the freshness bench can measure.
func FreshnessSources() []string {
	var out []string
	for k := range freshSources {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// fileFresh drives the YAML file source: each change rewrites the file as an editor does.
type fileFresh struct{ path string }

func (f *fileFresh) Setup(_ context.Context, d *Directory, dir, _ string) (string, error) {
	f.path = filepath.Join(dir, "directory.yaml")
	return fmt.Sprintf("  type: file\n  file: {path: %s}\n", f.path), f.write(d)
}

func (f *fileFresh) Apply(_ context.Context, d *Directory, _ *FreshChange) error { return f.write(d) }

// ExternalID is the file's id itself.
func (f *fileFresh) ExternalID(id string) string { return id }

func (f *fileFresh) write(d *Directory) error {
	tmp := f.path + ".tmp"
	if err := writeDirectory(d, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, f.path)
}

func (f *fileFresh) Close() error { return nil }

// RunFreshness runs serve against a source with a change feed, makes random changes to the
// source, and measures how long each takes to show in the embedded Identity Center.
func RunFreshness(ctx context.Context, o FreshnessOptions) (*FreshnessReport, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src := o.Driver
	if src == nil {
		mk, ok := freshSources[o.Source]
		if !ok {
			return nil, fmt.Errorf("bench freshness: unknown source %q (known: %s)", o.Source, strings.Join(FreshnessSources(), ", "))
		}
		src = mk(o)
	}
	if o.Changes <= 0 || o.Spread < 0 || o.Quiet < 0 {
		return nil, errors.New("bench freshness: changes must be positive, spread and quiet not negative")
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	dir, cleanup, err := workDir(o.Dir, "scimbridge-freshness-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	emu, base, stop, err := startTarget(o.RPS, o.Latency)
	if err != nil {
		return nil, err
	}
	defer stop()

	defer src.Close()
	d := Generate(o.Spec)
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	srcYAML, err := src.Setup(ctx, d, dir, listen)
	if err != nil {
		return nil, fmt.Errorf("bench freshness: set up the %s source: %w", o.Source, err)
	}
	window := ""
	if o.BatchWindow > 0 {
		window = fmt.Sprintf("  feed: {batch_window: %s}\n", o.BatchWindow)
	}
	cfgPath := filepath.Join(dir, "scimbridge.yaml")
	cfg := fmt.Sprintf(`source:
%starget:
  scim_url: %s
  token_file: %s
sync:
  guards: {max_deletes: -1, max_delete_percent: -1, max_clear_percent: -1}
state:
  path: %s
service:
  listen: %s
%slog: {level: info, format: json}
`, srcYAML, base+emu.SCIMPath(), filepath.Join(dir, "token"), filepath.Join(dir, "state.db"), listen, window)
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(emu.Token()), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	u, g, m := d.Counts()
	rep := &FreshnessReport{Source: o.Source, Users: u, Groups: g, Memberships: m, Changes: o.Changes, SpreadSeconds: o.Spread.Seconds()}

	log.Info("initial sync", "users", u, "groups", g)
	if _, err := runPhase(ctx, o.Binary, cfgPath, 0, o.RPS, emu.Stats); err != nil {
		return nil, fmt.Errorf("initial sync: %w", err)
	}
	sv, err := startServe(ctx, o.Binary, cfgPath, filepath.Join(dir, "serve.log"), listen, o.ServeArgs...)
	if err != nil {
		return nil, err
	}
	defer sv.stop()
	if err := sv.waitWatching(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	log.Info("serve is watching the source; making changes", "changes", o.Changes, "spread", o.Spread.String())

	counter, counts := src.(SourceRequestCounter)
	counts = counts && counter.SourceRequests() >= 0
	srcRequests := func() int64 {
		if !counts {
			return -1
		}
		return counter.SourceRequests()
	}
	emu.ResetStats()
	srcBefore := srcRequests()
	before, err := sv.scrape()
	if err != nil {
		return nil, err
	}
	changes, at, seen, err := makeChanges(ctx, o, d, src, emu, log)
	if err != nil {
		return nil, err
	}
	var all []time.Duration
	byKind := map[string][]time.Duration{}
	for i, c := range changes {
		if seen[i].IsZero() {
			rep.Missed = append(rep.Missed, c.Desc)
			continue
		}
		l := seen[i].Sub(at[i])
		all = append(all, l)
		byKind[c.Kind] = append(byKind[c.Kind], l)
	}
	rep.Latency = latencyStats(all)
	rep.ByKind = map[string]LatencyStats{}
	for k, v := range byKind {
		rep.ByKind[k] = latencyStats(v)
	}
	// Let the last run end and be counted.
	if err := sv.waitIdle(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	after, err := sv.scrape()
	if err != nil {
		return nil, err
	}
	tc := targetCounts(emu.Stats())
	srcAfter := srcRequests()
	rep.SourceRequests, rep.QuietSourceRequests = -1, -1
	if counts {
		rep.SourceRequests = srcAfter - srcBefore
		rep.SourceRequestsPerChange = float64(rep.SourceRequests) / float64(len(changes))
	}
	rep.TargetRequests, rep.TargetWrites = tc.Reads+tc.Writes, tc.Writes
	rep.LowerBound = int64(after.lowerBound - before.lowerBound)
	rep.Runs = int64(after.runs - before.runs)
	rep.FullSourceReads = int64(after.fullReads - before.fullReads)
	rep.TargetedSourceReads = int64(after.targetedReads - before.targetedReads)
	rep.TargetRequestsPerChg = float64(rep.TargetRequests) / float64(len(changes))
	rep.SourceReadsPerChange = float64(rep.FullSourceReads+rep.TargetedSourceReads) / float64(len(changes))

	log.Info("changes measured; quiet period", "quiet", o.Quiet.String())
	emu.ResetStats()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.Quiet):
	}
	quiet, err := sv.scrape()
	if err != nil {
		return nil, err
	}
	tc = targetCounts(emu.Stats())
	if counts {
		rep.QuietSourceRequests = srcRequests() - srcAfter
	}
	rep.QuietSeconds = o.Quiet.Seconds()
	rep.QuietTargetRequests = tc.Reads + tc.Writes
	rep.QuietRuns = int64(quiet.runs - after.runs)
	rep.QuietSourceReads = int64(quiet.fullReads + quiet.targetedReads - after.fullReads - after.targetedReads)

	if err := sv.stop(); err != nil {
		log.Warn("serve did not stop cleanly", "err", err)
	}
	final, err := finalPlan(ctx, o.Binary, cfgPath)
	if err != nil {
		return nil, err
	}
	rep.FinalPlan, rep.FinalChanges = final.Summary.LowerBound, nonZero(final)
	return rep, nil
}

// makeChanges makes the changes spread over o.Spread, and polls the target until each shows
// (or o.Timeout after the last). It returns each change, when it was made and when it showed.
func makeChanges(ctx context.Context, o FreshnessOptions, d *Directory, src FreshSource, emu *emulator.Emulator, log *slog.Logger) ([]*FreshChange, []time.Time, []time.Time, error) {
	n := o.Changes
	changes := make([]*FreshChange, 0, n)
	at := make([]time.Time, 0, n)
	seen := make([]time.Time, n)
	busy := map[int]bool{}
	start := time.Now()
	slot := o.Spread / time.Duration(n)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	pending := func() int {
		p := 0
		for i := range changes {
			if seen[i].IsZero() {
				p++
			}
		}
		return p
	}
	check := func() error {
		if pending() == 0 {
			return nil
		}
		v, err := targetView(emu)
		if err != nil {
			return err
		}
		now := time.Now()
		for i, c := range changes {
			if seen[i].IsZero() && c.Arrived(d, v, src.ExternalID) {
				seen[i] = now
				delete(busy, c.User)
			}
		}
		return nil
	}
	next := start
	var deadline time.Time
	for {
		if len(changes) < n && !time.Now().Before(next) {
			kind := FreshKinds[d.rng.IntN(len(FreshKinds))]
			c := d.FreshChange(kind, len(changes), busy)
			if err := src.Apply(ctx, d, c); err != nil {
				return nil, nil, nil, fmt.Errorf("change %d (%s): %w", len(changes), c.Desc, err)
			}
			busy[c.User] = true
			changes = append(changes, c)
			at = append(at, time.Now())
			log.Debug("change made", "n", len(changes), "change", c.Desc)
			// The next change comes in the next slot, at a random point of it.
			next = start.Add(time.Duration(len(changes))*slot + time.Duration(d.rng.Int64N(int64(slot)+1)))
			if len(changes) == n {
				deadline = time.Now().Add(o.Timeout)
			}
			continue
		}
		if err := check(); err != nil {
			return nil, nil, nil, err
		}
		if len(changes) == n && (pending() == 0 || time.Now().After(deadline)) {
			return changes, at, seen, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		case <-poll.C:
		}
	}
}

// targetView reads the embedded Identity Center directly (not through its API: the polls are no
// requests of the measured sync).
func targetView(emu *emulator.Emulator) (TargetView, error) {
	dump, err := emu.Dump()
	if err != nil {
		return TargetView{}, err
	}
	v := TargetView{Users: map[string]string{}, Members: map[string]map[string]bool{}}
	ext := map[string]string{}
	for _, u := range dump.Users {
		v.Users[u.ExternalID] = u.UserName
		ext[u.ID] = u.ExternalID
	}
	for _, g := range dump.Groups {
		m := map[string]bool{}
		for _, id := range g.Members {
			m[ext[id]] = true
		}
		v.Members[g.ExternalID] = m
	}
	return v, nil
}

// finalPlan runs `sync --dry-run --full` and returns what it planned.
func finalPlan(ctx context.Context, binary, cfgPath string) (*syncOutput, error) {
	cmd := exec.CommandContext(ctx, binary, "sync", "--config", cfgPath, "--dry-run", "--full", "--output", "json", "--summary-only")
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true")
	out, err := cmd.Output()
	var so syncOutput
	if jerr := json.Unmarshal(out, &so); jerr != nil {
		return nil, fmt.Errorf("final full read: %w", errors.Join(err, jerr))
	}
	return &so, nil
}

func nonZero(o *syncOutput) map[string]int {
	s := o.Summary
	m := map[string]int{}
	for k, v := range map[string]int{"createUsers": s.CreateUsers, "updateUsers": s.UpdateUsers, "disableUsers": s.DisableUsers,
		"deleteUsers": s.DeleteUsers, "createGroups": s.CreateGroups, "updateGroups": s.UpdateGroups,
		"deleteGroups": s.DeleteGroups, "addMembers": s.AddMembers, "removeMembers": s.RemoveMembers} {
		if v != 0 {
			m[k] = v
		}
	}
	return m
}

// WriteTable writes the report for a person.
func (r *FreshnessReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "source %s: %d users, %d groups, %d direct memberships; %d changes over %.0fs\n",
		r.Source, r.Users, r.Groups, r.Memberships, r.Changes, r.SpreadSeconds)
	fmt.Fprintf(w, "change-to-target latency: p50 %.2fs  p95 %.2fs  max %.2fs  (%d seen", r.Latency.P50, r.Latency.P95, r.Latency.Max, r.Latency.N)
	if len(r.Missed) > 0 {
		fmt.Fprintf(w, ", %d never seen: %s", len(r.Missed), strings.Join(r.Missed, "; "))
	}
	fmt.Fprintln(w, ")")
	for _, k := range FreshKinds {
		if s, ok := r.ByKind[k]; ok {
			fmt.Fprintf(w, "  %-7s n=%-3d p50 %.2fs  p95 %.2fs  max %.2fs\n", k, s.N, s.P50, s.P95, s.Max)
		}
	}
	fmt.Fprintf(w, "during the changes: %d runs; target %d requests (%d writes, lower bound %d), %.2f per change; source reads %d full, %d targeted, %.2f per change\n",
		r.Runs, r.TargetRequests, r.TargetWrites, r.LowerBound, r.TargetRequestsPerChg, r.FullSourceReads, r.TargetedSourceReads, r.SourceReadsPerChange)
	if r.SourceRequests >= 0 {
		fmt.Fprintf(w, "source requests (protocol level) during the changes: %d, %.2f per change\n", r.SourceRequests, r.SourceRequestsPerChange)
	}
	fmt.Fprintf(w, "quiet %.0fs: %d target requests, %d runs, %d source reads", r.QuietSeconds, r.QuietTargetRequests, r.QuietRuns, r.QuietSourceReads)
	if r.QuietSourceRequests >= 0 {
		fmt.Fprintf(w, ", %d source requests", r.QuietSourceRequests)
	}
	fmt.Fprintln(w)
	if r.FinalPlan == 0 && len(r.FinalChanges) == 0 {
		fmt.Fprintln(w, "after the bench a full read plans nothing")
	} else {
		fmt.Fprintf(w, "after the bench a full read plans %d writes: %v\n", r.FinalPlan, r.FinalChanges)
	}
	return nil
}
