package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/scimbridge/scimbridge/scim/plan"
)

// writePlanText prints the plan for a person. A plan over plan.LargePlanLines lines is
// summarised per kind of change when stdout is a terminal or --plan-file is given (unless
// --detail): the whole plan goes to --plan-file, or on a terminal without it to
// <data_dir>/last-plan.txt, and the summary says where.
func writePlanText(out io.Writer, p *plan.Plan, maxMembers int, f syncFlags, dataDir string, log *slog.Logger) {
	file := f.planFile
	if file != "" {
		if err := writePlanFile(file, p, maxMembers); err != nil {
			log.Error("the plan file was not written", "path", file, "err", err)
			file = ""
		}
	}
	if f.detail || (file == "" && !isTerminal(out)) {
		_ = p.WriteText(out, maxMembers)
		return
	}
	where := func() string {
		if file == "" { // on a terminal without --plan-file: keep the whole plan beside the state
			file = filepath.Join(dataDir, "last-plan.txt")
			if err := writePlanFile(file, p, maxMembers); err != nil {
				log.Warn("the whole plan was not written", "path", file, "err", err)
				return "run with --detail to print it"
			}
		}
		return "the whole plan is in " + file + "; --detail prints it here"
	}
	var buf strings.Builder
	if short, _ := p.WriteTextShort(&buf, maxMembers, plan.LargePlanLines, plan.EntriesPerKind, "%WHERE%"); short {
		_, _ = io.WriteString(out, strings.Replace(buf.String(), "%WHERE%", where(), 1))
		return
	}
	_, _ = io.WriteString(out, buf.String())
}

func writePlanFile(path string, p *plan.Plan, maxMembers int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	if err := p.WriteText(&b, maxMembers); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one line on a terminal while a long apply runs (200 changes or more), with
// the time elapsed and, once a tenth is done, the time left at the pace so far; elsewhere it stays
// silent. Anything else written to the same terminal through writer() first ends the bar's
// line, so a log line never lands after the bar on its line; the next update draws the bar again.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	now   func() time.Time
	start time.Time
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, on: isTerminal(w), now: time.Now}
}

func (b *progressBar) update(done, total int) {
	if !b.on || total < 200 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.start.IsZero() {
		b.start = now
	}
	if now.Sub(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = now
	const width = 30
	filled := width * done / total
	elapsed := now.Sub(b.start)
	eta := ""
	if done*10 >= total && done < total {
		left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
		eta = ", about " + roundDuration(left) + " left"
	}
	fmt.Fprintf(b.w, "\r[%s%s] %3d%% %d/%d changes, %s elapsed%s\x1b[K", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		100*done/total, done, total, roundDuration(elapsed), eta)
	b.drawn = true
}

// endLine ends the bar's line if it is drawn; the caller holds mu.
func (b *progressBar) endLine() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.endLine()
}

// writer returns a writer to the bar's terminal that ends the bar's line before each write.
func (b *progressBar) writer() io.Writer { return barWriter{b} }

type barWriter struct{ b *progressBar }

func (w barWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	w.b.endLine()
	return w.b.w.Write(p)
}

// roundDuration writes d for a person: 45s, 3m20s, 1h05m.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
