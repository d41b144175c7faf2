package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// Options configure a bench run.
type Options struct {
	Spec Spec
	// RPS is the emulator's request-rate limit per API (0: unlimited); it is never told to the
	// client, whose limiter must find it.
	RPS float64
	// Latency is added by the emulator to every request.
	Latency time.Duration
	// Binary is the scimbridge binary to run for each phase.
	Binary string
	// Dir holds the generated files; "" means a temporary folder, removed afterwards.
	Dir string
	// Phases selects phases by name (initial, no-change, churn); empty runs all.
	Phases []string
	// Log receives progress lines.
	Log *slog.Logger
}

// Phase is the measurement of one sync.
type Phase struct {
	Name string `json:"name"`
	// Requests counts every request attempt by API and operation, throttled ones included.
	Requests map[string]int `json:"requests"`
	// Writes and Reads split Requests; Throttled counts attempts answered 429/ThrottlingException.
	Writes    int `json:"writes"`
	Reads     int `json:"reads"`
	Throttled int `json:"throttled"`
	// AcceptedWrites are the write attempts not answered 429, by the sync's count: the writes the
	// target carried out (or refused for a reason other than its rate).
	AcceptedWrites int `json:"acceptedWrites"`
	// Target is what the embedded Identity Center counted on its side of the wire during the phase.
	Target TargetCounts `json:"target"`
	// Mismatches lists every count on which the sync and the target disagree; a phase with any
	// makes the bench fail (ErrCountsDisagree).
	Mismatches []string `json:"mismatches,omitempty"`
	// LowerBound is the fewest write requests that express the phase's plan; Ratio is the target's
	// accepted writes over it (1 when both are 0).
	LowerBound int     `json:"lowerBound"`
	Ratio      float64 `json:"ratio"`
	// WallSeconds is the sync process's wall time, from start to exit; LowerBoundSeconds is the
	// time the lower bound needs at the configured rate (0 when unlimited).
	WallSeconds       float64 `json:"wallSeconds"`
	LowerBoundSeconds float64 `json:"lowerBoundSeconds"`
	// PeakRSSBytes and CPUSeconds are the sync process's peak resident memory and CPU time.
	PeakRSSBytes int64   `json:"peakRssBytes"`
	CPUSeconds   float64 `json:"cpuSeconds"`
	// Result is the run's result (success, partial, ...); Changes summarises the plan.
	Result  string         `json:"result"`
	Changes map[string]int `json:"changes"`
}

// TargetCounts are the embedded Identity Center's own counters (emulator.Stats) for one phase.
type TargetCounts struct {
	// Requests counts, by operation in the emulator's names ("scim.PutUser", ...), the requests that
	// got past the rate limit and the fault knobs and reached the operation.
	Requests map[string]int64 `json:"requests"`
	// Writes and Reads split Requests: Writes are the accepted writes the ratio is computed from.
	Writes int64 `json:"writes"`
	Reads  int64 `json:"reads"`
	// Throttled, Injected and Dropped count the requests the rate limit answered 429 /
	// ThrottlingException, the ones answered an injected 500 and the ones whose connection was cut.
	Throttled int64 `json:"throttled"`
	Injected  int64 `json:"injected"`
	Dropped   int64 `json:"dropped"`
}

// ErrCountsDisagree is returned by Run, with the report, when a phase's request counts by the sync
// differ from the target's own counts: the figures of that phase cannot be trusted.
var ErrCountsDisagree = errors.New("bench: the sync's request counts and the target's disagree")

// targetCounts splits the emulator's counters into operations and fault counts.
func targetCounts(st emulator.Stats) TargetCounts {
	t := TargetCounts{Requests: map[string]int64{}}
	for k, n := range st {
		switch k {
		case "throttled":
			t.Throttled = n
		case "injected":
			t.Injected = n
		case "dropped":
			t.Dropped = n
		default:
			t.Requests[k] = n
			if isWrite(k) {
				t.Writes += n
			} else {
				t.Reads += n
			}
		}
	}
	return t
}

// targetOp names the client's operation as the emulator counts it; the client calls a full
// replace of a user ReplaceUser, the SCIM API reference (and the emulator) PutUser.
func targetOp(clientOp string) string {
	if clientOp == "scim.ReplaceUser" {
		return "scim.PutUser"
	}
	return clientOp
}

// compareCounts checks, operation by operation, that the requests the sync says were not
// throttled are the requests the target says reached it, and that both count the same throttled
// requests. It returns one line per disagreement, sorted.
func compareCounts(requests, throttledBy map[string]int, throttled int, t TargetCounts) []string {
	accepted := map[string]int64{}
	for op, n := range requests {
		accepted[targetOp(op)] += int64(n - throttledBy[op])
	}
	ops := map[string]bool{}
	for op := range accepted {
		ops[op] = true
	}
	for op := range t.Requests {
		ops[op] = true
	}
	var out []string
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		if accepted[op] != t.Requests[op] {
			out = append(out, fmt.Sprintf("%s: sync %d accepted, target %d", op, accepted[op], t.Requests[op]))
		}
	}
	if int64(throttled) != t.Throttled {
		out = append(out, fmt.Sprintf("throttled: sync %d, target %d", throttled, t.Throttled))
	}
	// The bench injects no errors or drops; the sync cannot tell them apart in its counts.
	if t.Injected != 0 || t.Dropped != 0 {
		out = append(out, fmt.Sprintf("faults the bench does not inject: target %d injected, %d dropped", t.Injected, t.Dropped))
	}
	return out
}

// Report is the whole bench.
type Report struct {
	Users       int     `json:"users"`
	Groups      int     `json:"groups"`
	Memberships int     `json:"memberships"`
	Seed        uint64  `json:"seed"`
	RPS         float64 `json:"rps"`
	LatencyMS   float64 `json:"latencyMs"`
	Churn       string  `json:"churn"`
	Phases      []Phase `json:"phases"`
	// Emulator is the target's counters of the last phase run (each phase's are in Phase.Target).
	Emulator map[string]int64 `json:"emulatorCalls"`
}

// Run generates the directory, starts the emulator and runs the phases. When the target's counts
// disagree with the sync's in any phase it still runs them all, and returns the report with an
// error wrapping ErrCountsDisagree that names each phase and count.
func Run(ctx context.Context, o Options) (*Report, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, cleanup, err := workDir(o.Dir, "scimbridge-bench-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	emu, base, stop, err := startTarget(o.RPS, o.Latency)
	if err != nil {
		return nil, err
	}
	defer stop()

	cfgPath := filepath.Join(dir, "scimbridge.yaml")
	dirPath := filepath.Join(dir, "directory.yaml")
	cfg := fmt.Sprintf(`source:
  type: file
  file: {path: %s}
target:
  scim_url: %s
  token_file: %s
  identity_store_id: %s
  region: us-east-1
  identitystore_endpoint: %s
sync:
  guards: {max_deletes: -1, max_delete_percent: -1}
state:
  path: %s
log: {level: warn}
`, dirPath, base+emu.SCIMPath(), filepath.Join(dir, "token"), emu.IdentityStoreID(), base+emu.IdentityStorePath(), filepath.Join(dir, "state.db"))
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(emu.Token()), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}

	start := time.Now()
	d := Generate(o.Spec)
	if err := writeDirectory(d, dirPath); err != nil {
		return nil, err
	}
	u, g, m := d.Counts()
	log.Info("directory generated", "users", u, "groups", g, "memberships", m, "took", time.Since(start).Round(time.Millisecond))
	rep := &Report{Users: u, Groups: g, Memberships: m, Seed: o.Spec.Seed, RPS: o.RPS, LatencyMS: float64(o.Latency) / float64(time.Millisecond)}

	var disagree []string
	want := func(name string) bool { return len(o.Phases) == 0 || slices.Contains(o.Phases, name) }
	phases := []struct {
		name   string
		before func() (allowDeletes int, err error)
	}{
		{"initial", func() (int, error) { return 0, nil }},
		{"no-change", func() (int, error) { return 0, nil }},
		{"churn", func() (int, error) {
			changed, moved, left := d.Churn(10, 10, 5)
			rep.Churn = fmt.Sprintf("%d users changed, %d moved groups, %d left", changed, moved, left)
			return left, writeDirectory(d, dirPath)
		}},
	}
	for _, ph := range phases {
		if !want(ph.name) && ph.name != "initial" { // later phases need the initial sync
			continue
		}
		allow, err := ph.before()
		if err != nil {
			return nil, err
		}
		emu.ResetStats()
		log.Info("phase started", "phase", ph.name)
		p, err := runPhase(ctx, o.Binary, cfgPath, allow, o.RPS, emu.Stats)
		if err != nil {
			return nil, fmt.Errorf("phase %s: %w", ph.name, err)
		}
		p.Name = ph.name
		log.Info("phase done", "phase", ph.name, "writes", p.Writes, "target_writes", p.Target.Writes,
			"lower_bound", p.LowerBound, "wall_s", p.WallSeconds)
		for _, m := range p.Mismatches {
			log.Error("the sync's and the target's counts disagree", "phase", ph.name, "count", m)
			disagree = append(disagree, fmt.Sprintf("%s: %s", ph.name, m))
		}
		if want(ph.name) {
			rep.Phases = append(rep.Phases, *p)
		}
	}
	rep.Emulator = emu.Stats()
	if len(disagree) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrCountsDisagree, strings.Join(disagree, "; "))
	}
	return rep, nil
}

func writeDirectory(d *Directory, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := d.WriteYAML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncOutput is the part of `scimbridge sync --output json` the bench reads.
type syncOutput struct {
	Result            string         `json:"result"`
	Requests          map[string]int `json:"requests"`
	Throttled         int            `json:"throttled"`
	ThrottledRequests map[string]int `json:"throttledRequests"`
	PeakRSSBytes      int64          `json:"peakRssBytes"`
	Errors            []string       `json:"errors"`
	Summary           struct {
		CreateUsers, UpdateUsers, DisableUsers, DeleteUsers int
		CreateGroups, UpdateGroups, DeleteGroups            int
		AddMembers, RemoveMembers                           int
		LowerBound                                          int
	} `json:"summary"`
}

// runPhase runs one sync and measures it; stats returns the target's counters, reset before.
func runPhase(ctx context.Context, binary, cfgPath string, allowDeletes int, rps float64, stats func() emulator.Stats) (*Phase, error) {
	cmd := exec.CommandContext(ctx, binary, "sync", "--config", cfgPath, "--output", "json", "--summary-only", "--allow-deletes", strconv.Itoa(allowDeletes))
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	// The child has exited: every request it sent has been answered or cut, and counted.
	target := targetCounts(stats())
	var out syncOutput
	if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil {
		return nil, fmt.Errorf("sync: %v: %s", errors.Join(err, jerr), tail(stderr.String()))
	}
	if err != nil && out.Result != "partial" {
		return nil, fmt.Errorf("sync: %v (result %s): %s", err, out.Result, tail(stderr.String()))
	}
	p := &Phase{Requests: out.Requests, Throttled: out.Throttled, LowerBound: out.Summary.LowerBound,
		WallSeconds: wall.Seconds(), Result: out.Result, Target: target}
	for op, n := range out.Requests {
		if isWrite(op) {
			p.Writes += n
			p.AcceptedWrites += n - out.ThrottledRequests[op]
		} else {
			p.Reads += n
		}
	}
	p.Mismatches = compareCounts(out.Requests, out.ThrottledRequests, out.Throttled, target)
	p.Ratio = ratio(target.Writes, p.LowerBound)
	if rps > 0 {
		p.LowerBoundSeconds = float64(p.LowerBound) / rps
	}
	// The child measures its own peak RSS: the rusage of a child started by this (large)
	// process carries this process's high-water mark across the exec.
	p.PeakRSSBytes = out.PeakRSSBytes
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		p.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	s := out.Summary
	p.Changes = map[string]int{"createUsers": s.CreateUsers, "updateUsers": s.UpdateUsers, "disableUsers": s.DisableUsers,
		"deleteUsers": s.DeleteUsers, "createGroups": s.CreateGroups, "updateGroups": s.UpdateGroups,
		"deleteGroups": s.DeleteGroups, "addMembers": s.AddMembers, "removeMembers": s.RemoveMembers}
	return p, nil
}

// ratio is the target's accepted writes over the lower bound: 1 when both are 0, the writes
// themselves when only the lower bound is.
func ratio(writes int64, lowerBound int) float64 {
	switch {
	case lowerBound > 0:
		return float64(writes) / float64(lowerBound)
	case writes > 0:
		return float64(writes)
	}
	return 1
}

// isWrite tells write operations from reads, by the client's or the emulator's operation names.
func isWrite(op string) bool {
	api, name, _ := strings.Cut(op, ".")
	if api != "scim" {
		return false
	}
	for _, p := range []string{"Create", "Replace", "Put", "Patch", "Delete", "SetUserActive"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}

// WriteTable writes the report for a person.
func (r *Report) WriteTable(w io.Writer) error {
	rate := "unlimited"
	if r.RPS > 0 {
		rate = fmt.Sprintf("%g requests/s", r.RPS)
	}
	fmt.Fprintf(w, "directory: %d users, %d groups, %d direct memberships (seed %d); target: %s, %gms latency\n",
		r.Users, r.Groups, r.Memberships, r.Seed, rate, r.LatencyMS)
	if r.Churn != "" {
		fmt.Fprintf(w, "churn: %s\n", r.Churn)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\twrites sent\taccepted (sync)\taccepted (target)\treads\tlower bound\tratio\t429s (sync)\t429s (target)\twall\tlower bound time\tpeak RSS\tCPU\tresult\t")
	for _, p := range r.Phases {
		lbt := "-"
		if p.LowerBoundSeconds > 0 {
			lbt = fmt.Sprintf("%.1fs", p.LowerBoundSeconds)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.3f\t%d\t%d\t%.1fs\t%s\t%.0f MB\t%.1fs\t%s\t\n", p.Name, p.Writes, p.AcceptedWrites, p.Target.Writes,
			p.Reads, p.LowerBound, p.Ratio, p.Throttled, p.Target.Throttled, p.WallSeconds, lbt, float64(p.PeakRSSBytes)/(1<<20), p.CPUSeconds, p.Result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Phases {
		ops := make([]string, 0, len(p.Requests))
		for op, n := range p.Requests {
			ops = append(ops, fmt.Sprintf("%s %d", op, n))
		}
		slices.Sort(ops)
		fmt.Fprintf(w, "%s requests: %s\n", p.Name, strings.Join(ops, ", "))
	}
	for _, p := range r.Phases {
		for _, m := range p.Mismatches {
			fmt.Fprintf(w, "COUNTS DISAGREE in %s: %s\n", p.Name, m)
		}
	}
	return nil
}
