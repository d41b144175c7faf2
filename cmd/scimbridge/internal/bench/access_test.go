package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// scaledAccess is the access phase scaled down: 100 operations of 20 ms each, unthrottled.
func scaledAccess() AccessOptions {
	return AccessOptions{Operations: 100, Accounts: 12, RPS: -1, MaxOutstanding: 10, Delay: 20 * time.Millisecond,
		PollMin: 2 * time.Millisecond, FirstEstimate: 10 * time.Millisecond}
}

func TestAccessPhaseCounts(t *testing.T) {
	rep, err := RunAccess(context.Background(), scaledAccess())
	if err != nil {
		t.Fatalf("RunAccess: %v", err)
	}
	if len(rep.Phases) != 2 {
		t.Fatalf("phases %+v, want create and delete", rep.Phases)
	}
	for _, p := range rep.Phases {
		if p.Operations != 100 || p.Failed != 0 || p.Starts != 100 {
			t.Errorf("%s: %d operations, %d failed, %d starts; want 100, 0, 100", p.Name, p.Operations, p.Failed, p.Starts)
		}
		if p.MaxOutstanding != 10 {
			t.Errorf("%s: at most %d outstanding, want exactly 10", p.Name, p.MaxOutstanding)
		}
		if p.RequestsPerOp > 2.5 { // 3 would be a poll and a describe for each one alone
			t.Errorf("%s: %.2f requests per operation, want at most 2.5", p.Name, p.RequestsPerOp)
		}
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"create", "delete", "total", "requests/op"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// BenchmarkAccessPhase runs the access phase scaled down (100 creates and 100 deletes of 100 ms,
// 10 outstanding, unthrottled): ratio is the wall time over what the settings allow
// (200 x 100 ms / 10 = 2 s).
func BenchmarkAccessPhase(b *testing.B) {
	o := scaledAccess()
	o.Delay, o.PollMin = 100*time.Millisecond, 5*time.Millisecond
	for b.Loop() {
		rep, err := RunAccess(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		var wall, limit, reqs, ops float64
		for _, p := range rep.Phases {
			wall += p.WallSeconds
			limit += p.LimitSeconds
			reqs += p.RequestsPerOp * float64(p.Operations)
			ops += float64(p.Operations)
		}
		b.ReportMetric(wall/limit, "ratio")
		b.ReportMetric(reqs/ops, "requests/op")
	}
}
