package service

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/scimbridge/scimbridge/scim/state"
)

// The history chart of the status page: the runs of the last chartDays days as an inline SVG,
// drawn on the server (no script, nothing fetched: the page's Content-Security-Policy allows
// neither). Each run is a bar of its changes (creates, updates, disables, deletes and membership
// changes; a dry run's would-be changes, hollow), coloured by its result, on the left scale; its
// duration is a dot on the right scale, the dots joined by a line. Each bar and dot has a
// <title>, shown on hover.
const (
	chartDays   = 7
	chartRuns   = 200 // the most runs read for the chart (hourly runs for a week, and webhooks)
	chartWidth  = 760
	chartHeight = 220
	chartLeft   = 56 // room for the scales' labels
	chartRight  = 56
	chartTop    = 14
	chartBottom = 34
)

// resultColours are the colours of results, as in the runs table.
var resultColours = map[string]string{
	state.ResultSuccess: "#1a7f37",
	state.ResultPartial: "#9a6700",
	state.ResultFailed:  "#cf222e",
	state.ResultBlocked: "#cf222e",
	"":                  "#0969da", // running
}

// runChanges is what a run changed (or, dry, would change).
func runChanges(c state.Counts) int {
	return c.Created + c.Updated + c.Deleted + c.Disabled + c.MemberAdds + c.MemberRemoves
}

// historyChart draws the runs that started in the chartDays days before now (newest first, as
// the history returns them). The SVG holds only numbers, dates and result names.
func historyChart(runs []state.Run, now time.Time) template.HTML {
	from := now.Add(-chartDays * 24 * time.Hour)
	var shown []state.Run
	maxChanges, maxDur := 0, 0.0
	for _, r := range runs {
		if r.Started.Before(from) || r.Started.After(now) {
			continue
		}
		shown = append(shown, r)
		maxChanges = max(maxChanges, runChanges(r.Counts))
		if !r.Ended.IsZero() {
			maxDur = max(maxDur, r.Ended.Sub(r.Started).Seconds())
		}
	}
	yMax := niceCeil(float64(max(maxChanges, 1)))
	dMax := niceSeconds(maxDur)
	plotW := float64(chartWidth - chartLeft - chartRight)
	plotH := float64(chartHeight - chartTop - chartBottom)
	x := func(t time.Time) float64 { return chartLeft + plotW*t.Sub(from).Seconds()/now.Sub(from).Seconds() }
	yC := func(v float64) float64 { return chartTop + plotH*(1-v/yMax) }
	yD := func(v float64) float64 { return chartTop + plotH*(1-v/dMax) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="history" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="Changes and duration of the runs of the last %d days">`,
		chartWidth, chartHeight, chartWidth, chartHeight, chartDays)
	fmt.Fprintf(&b, `<title>Changes and duration of the runs of the last %d days (%d runs)</title>`, chartDays, len(shown))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="#fff" stroke="#d0d7de"/>`, chartLeft, chartTop, plotW, plotH)
	// Scales: gridlines at quarters, changes on the left, seconds on the right.
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		y := chartTop + plotH*(1-f)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eaeef2"/>`, chartLeft, y, chartLeft+plotW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#57606a">%s</text>`, chartLeft-4, y+3, shortNumber(yMax*f))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="10" fill="#57606a">%s</text>`, chartLeft+plotW+4, y+3, shortSeconds(dMax*f))
	}
	// Days: a tick and a label at each midnight (UTC).
	for d := from.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour); d.Before(now); d = d.Add(24 * time.Hour) {
		xd := x(d)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.0f" stroke="#d0d7de" stroke-dasharray="2,3"/>`, xd, chartTop, xd, chartTop+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="10" text-anchor="middle" fill="#57606a">%s</text>`, xd, chartTop+plotH+13, d.Format("Jan 02"))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#57606a">changes</text>`, 4, chartHeight-6)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="end" fill="#57606a">duration</text>`, chartWidth-4, chartHeight-6)
	// Bars, oldest first so the newest are drawn on top.
	barW := math.Max(2, math.Min(10, plotW/float64(max(len(shown), 1))/2))
	var dots []string
	for i := len(shown) - 1; i >= 0; i-- {
		r := shown[i]
		c := runChanges(r.Counts)
		colour := resultColours[r.Result]
		if colour == "" {
			colour = "#57606a"
		}
		xr := x(r.Started)
		top := yC(float64(c))
		h := math.Max(chartTop+plotH-top, 1) // a run without changes still shows
		label := fmt.Sprintf("run %d, %s, %s: %d changes", r.ID, r.Started.UTC().Format("Jan 02 15:04"), orRunning(r.Result), c)
		fill, stroke := colour, "none"
		if r.DryRun {
			fill, stroke, label = "#fff", colour, label+" (dry run, not applied)"
		}
		fmt.Fprintf(&b, `<rect class="run r-%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="%s"><title>%s</title></rect>`,
			orRunning(r.Result), xr-barW/2, chartTop+plotH-h, barW, h, fill, stroke, template.HTMLEscapeString(label))
		if !r.Ended.IsZero() {
			sec := r.Ended.Sub(r.Started).Seconds()
			dots = append(dots, fmt.Sprintf("%.1f,%.1f", xr, yD(sec)))
			fmt.Fprintf(&b, `<circle class="duration" cx="%.1f" cy="%.1f" r="2.5" fill="#0969da"><title>run %d took %s</title></circle>`,
				xr, yD(sec), r.ID, shortSeconds(sec))
		}
	}
	if len(dots) > 1 {
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#0969da" stroke-width="1" stroke-opacity="0.6"/>`, strings.Join(dots, " "))
	}
	if len(shown) == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="12" text-anchor="middle" fill="#57606a">no run in the last %d days</text>`, chartLeft+plotW/2, chartTop+plotH/2, chartDays)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers, dates, result names and escaped labels only
}

func orRunning(result string) string {
	if result == "" {
		return "running"
	}
	return result
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for a scale's top.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// niceSeconds is the top of the duration scale: the first of a list whose quarters read well
// (15s, 1m, 5m, 15m, 1h, ...) that covers s.
func niceSeconds(s float64) float64 {
	for _, top := range []float64{4, 8, 20, 40, 60, 120, 240, 480, 600, 1200, 2400, 3600, 7200, 14400, 28800, 43200, 86400} {
		if top >= s {
			return top
		}
	}
	return niceCeil(s/86400) * 86400
}

// shortNumber writes a scale label: 0, 250, 1.5k, 20k.
func shortNumber(v float64) string {
	if v >= 1000 {
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1000), ".0") + "k"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
}

// shortSeconds writes a duration label: 0s, 1.5s, 45s, 2m, 1.5h.
func shortSeconds(s float64) string {
	switch {
	case s >= 3600:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", s/3600), ".0") + "h"
	case s >= 60:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", s/60), ".0") + "m"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", s), ".0") + "s"
}
