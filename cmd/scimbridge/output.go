package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// syncResultSchemaVersion is the version of `sync --output json`'s document, its schema_version.
// The document is described by deploy/docs/sync-result.schema.json (checked against real outputs
// by TestSyncJSONMatchesItsSchema). Adding a field keeps the version; renaming, removing or
// retyping one raises it.
const syncResultSchemaVersion = 1

// syncResult is the document `sync --output json` prints: the same keys whether or not there are
// changes (the plan's lists are [] when empty); the plan is left out only with --summary-only or
// when the run failed before planning.
type syncResult struct {
	SchemaVersion int    `json:"schema_version"`
	RunID         int64  `json:"runId"`
	Result        string `json:"result"`
	DryRun        bool   `json:"dryRun"`
	FullRead      bool   `json:"fullRead"`
	// DurationMS is the run's wall time in milliseconds.
	DurationMS int64          `json:"durationMs"`
	Counts     any            `json:"counts"`
	Requests   map[string]int `json:"requests"`
	Throttled  int            `json:"throttled"`
	// ThrottledRequests counts, by operation, the attempts answered 429/ThrottlingException
	// (they are included in Requests).
	ThrottledRequests map[string]int `json:"throttledRequests"`
	Errors            []string       `json:"errors"`
	Plan              any            `json:"plan,omitempty"`
	// PeakRSSBytes is this process's peak resident memory so far (Linux; 0 elsewhere).
	PeakRSSBytes int64        `json:"peakRssBytes"`
	Summary      plan.Summary `json:"summary"`
	// ExitCode is the process's exit code (see sync --help); LeftOut counts the records left
	// out (invalid or clashing), Clashes those of them that clash with unowned objects.
	ExitCode int          `json:"exitCode"`
	LeftOut  int          `json:"leftOut"`
	Clashes  []plan.Clash `json:"clashes"`
	// TargetRead is false when the run trusted the state store: unowned objects are then
	// those the last full read saw.
	TargetRead bool `json:"targetRead"`
	// Warnings is the mapping report of the source read: users synced without an expected
	// attribute (count and first ids), attributes the configuration names that no entry holds.
	Warnings []string `json:"warnings"`
	// Access is the access section's plan (with its summary) and what applying it did; absent
	// without an access section, or when the run stopped before it.
	Access *accessJSON `json:"access,omitempty"`
}

func writeJSONResult(w io.Writer, res *reconcile.Result, requests, throttledBy map[string]int, maxMembers int, summaryOnly bool, exitCode int, warnings []string, acc *accessJSON) error {
	o := syncResult{SchemaVersion: syncResultSchemaVersion, RunID: res.RunID, Result: res.Result, DryRun: res.DryRun,
		FullRead: res.FullRead, DurationMS: res.Duration.Milliseconds(), Counts: res.Counts, Requests: requests,
		Throttled: sumCounts(throttledBy), ThrottledRequests: throttledBy, Errors: res.Errors, PeakRSSBytes: peakRSS(),
		ExitCode: exitCode, TargetRead: res.FullRead, Clashes: []plan.Clash{}, Warnings: warnings, Access: acc}
	if o.Warnings == nil {
		o.Warnings = []string{}
	}
	if o.Errors == nil {
		o.Errors = []string{}
	}
	if o.Requests == nil {
		o.Requests = map[string]int{}
	}
	if o.ThrottledRequests == nil {
		o.ThrottledRequests = map[string]int{}
	}
	if res.Plan != nil {
		o.Summary = res.Plan.Summarize(maxMembers)
		o.LeftOut = res.Plan.LeftOut()
		if len(res.Plan.Clashes) > 0 {
			o.Clashes = res.Plan.Clashes
		}
		if !summaryOnly {
			full, err := withEveryKey(res.Plan)
			if err != nil {
				return err
			}
			o.Plan = full
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}

// withEveryKey encodes the struct v like encoding/json, then adds every top-level key that
// omitempty left out, as its zero value ([] for a list, {} for a map): the same keys whatever the
// values.
func withEveryKey(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	addZeroKeys(t, m)
	return m, nil
}

func addZeroKeys(t reflect.Type, m map[string]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addZeroKeys(ft, m)
			}
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, ok := m[name]; ok {
			continue
		}
		switch f.Type.Kind() {
		case reflect.Slice, reflect.Array:
			m[name] = []any{}
		case reflect.Map:
			m[name] = map[string]any{}
		case reflect.Bool:
			m[name] = false
		case reflect.String:
			m[name] = ""
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
			m[name] = 0
		default:
			m[name] = nil
		}
	}
}

// jsonLogDurations makes durations in JSON logs readable by programs and people alike: slog's
// JSON handler would write nanoseconds under the plain key (duration=9000000). The key gains
// _ms and the value is milliseconds (duration_ms=9.2).
func jsonLogDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	d := a.Value.Duration()
	key := a.Key
	if !strings.HasSuffix(key, "_ms") {
		key += "_ms"
	}
	return slog.Float64(key, float64(d.Round(time.Microsecond))/float64(time.Millisecond))
}
