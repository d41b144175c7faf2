package service

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim/golden"
	"github.com/scimbridge/scimbridge/scim/state"
)

// chartHistory is a week of runs ending at now: hourly scheduled runs (one a day partial, one
// blocked), a dry run, a webhook run with many changes, one older than the window, and one
// still running.
func chartHistory(now time.Time) []state.Run {
	var runs []state.Run
	id := int64(1000)
	add := func(r state.Run) {
		id++
		r.ID = id
		runs = append([]state.Run{r}, runs...) // newest first, as History returns them
	}
	add(state.Run{Trigger: "schedule", Started: now.Add(-9 * 24 * time.Hour), Ended: now.Add(-9*24*time.Hour + time.Minute), Result: state.ResultSuccess, Counts: state.Counts{Created: 9999}})
	for h := 7*24 - 1; h >= 1; h -= 6 {
		start := now.Add(-time.Duration(h) * time.Hour)
		r := state.Run{Trigger: "schedule", Started: start, Ended: start.Add(time.Duration(5+h%17) * time.Second), Result: state.ResultSuccess,
			Counts: state.Counts{Updated: h % 13, MemberAdds: h % 7}}
		switch {
		case h == 101:
			r.Result, r.Counts.Failed = state.ResultPartial, 2
		case h == 65:
			r.Result, r.Counts = state.ResultBlocked, state.Counts{Deleted: 140}
		}
		add(r)
	}
	add(state.Run{Trigger: "webhook", DryRun: true, Started: now.Add(-50 * time.Minute), Ended: now.Add(-49 * time.Minute), Result: state.ResultSuccess, Counts: state.Counts{Created: 30}})
	add(state.Run{Trigger: "webhook", Started: now.Add(-30 * time.Minute), Ended: now.Add(-28 * time.Minute), Result: state.ResultSuccess, Counts: state.Counts{Created: 300, MemberAdds: 900}})
	add(state.Run{Trigger: "schedule", Started: now.Add(-time.Minute)})
	return runs
}

// TestHistoryChart: the chart draws every run of the last 7 days and none older, a bar per run
// coloured by result (a dry run hollow), a duration dot per finished run, scales that cover the
// largest values; golden: testdata/history-chart.golden.svg (rewrite with -update).
func TestHistoryChart(t *testing.T) {
	now := time.Date(2027, 3, 10, 12, 0, 0, 0, time.UTC)
	runs := chartHistory(now)
	svg := string(historyChart(runs, now))
	golden.Check(t, filepath.Join("testdata", "history-chart.golden.svg"), []byte(svg+"\n"))
	inWindow := len(runs) - 1
	if got := strings.Count(svg, `<rect class="run `); got != inWindow {
		t.Errorf("got %d bars, want %d (every run of the week, not the older one)", got, inWindow)
	}
	if got := strings.Count(svg, `<circle class="duration"`); got != inWindow-1 {
		t.Errorf("got %d duration dots, want %d (not the running one)", got, inWindow-1)
	}
	for _, want := range []string{`class="run r-blocked"`, `class="run r-partial"`, `class="run r-running"`, `fill="#fff" stroke="#1a7f37"`, ">2k<", "dry run, not applied", ">Mar 09<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	if strings.Contains(svg, "9999") {
		t.Errorf("the chart shows the run older than %d days", chartDays)
	}
	if empty := string(historyChart(nil, now)); !strings.Contains(empty, "no run in the last 7 days") {
		t.Errorf("an empty history draws %s", empty)
	}
}

// TestHistoryChartInChromium renders the status page with a week of runs in headless Chromium:
// the SVG is in the rendered DOM with its bars, and the screenshot shows the bars' colours in
// the chart (the chart is drawn, not only present). Without Chromium the test is skipped, except
// in CI (CI=true), where it fails.
func TestHistoryChartInChromium(t *testing.T) {
	bin := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (Debian package chromium; see .ci/test-deps.sh)")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	f := newFixture(t, nil)
	ctx := context.Background()
	runs := chartHistory(f.now)
	slices.Reverse(runs) // record the oldest first
	for _, r := range runs {
		if r.Result == "" || r.Started.Before(f.now.Add(-chartDays*24*time.Hour)) {
			continue
		}
		id, err := f.st.StartRun(ctx, r.Trigger, r.DryRun, r.Started)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.FinishRun(ctx, id, r.Result, r.Counts, nil, "", r.Ended); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(f.h)
	defer srv.Close()

	outDir := os.Getenv("SCIMBRIDGE_TEST_OUTPUT")
	if outDir == "" {
		outDir = t.TempDir()
	} else if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(outDir, "status-page-history-chart.png")
	browse := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--window-size=1000,700"}
		cmd := exec.CommandContext(ctx, bin, append(append(base, args...), srv.URL+"/")...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	dom := browse("--dump-dom")
	if !strings.Contains(dom, `<svg id="history"`) || strings.Count(dom, `class="run r-`) < 20 {
		t.Fatalf("the rendered page has no chart with its bars:\n%.2000s", dom)
	}
	browse("--screenshot=" + shot)
	t.Logf("status page screenshot: %s", shot)
	file, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	img, err := png.Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	// Count the pixels of the success green (#1a7f37) and the duration blue (#0969da).
	green, blue := countColour(img, 0x1a, 0x7f, 0x37), countColour(img, 0x09, 0x69, 0xda)
	if green < 100 || blue < 30 {
		t.Errorf("the screenshot has %d green and %d blue pixels: the chart's bars and dots are not drawn", green, blue)
	}
}

func countColour(img image.Image, r, g, b uint8) int {
	n := 0
	near := func(a, b uint32) bool { d := int(a>>8) - int(b); return d > -12 && d < 12 }
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if near(cr, uint32(r)) && near(cg, uint32(g)) && near(cb, uint32(b)) {
				n++
			}
		}
	}
	return n
}
