package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeFileFeed: serve watches the directory file; an edit becomes a change-feed run that
// reads the file's changed entries alone, the change-to-apply latency and the feed's state are
// in /metrics and on the status page, and the cursor is saved.
func TestServeFileFeed(t *testing.T) {
	const token = "emulator-token-4711"
	scimURL := startEmulator(t, token, 0)
	dir := quickstart(t)
	cfg := fmt.Sprintf(`source: {type: file, file: {path: directory.yaml}}
target: {scim_url: %q, token: %q}
service:
  listen: 127.0.0.1:0
  interval: 1h
  feed: {batch_window: 100ms}
log: {format: json}
data_dir: data
`, scimURL, token)
	if err := os.WriteFile(filepath.Join(dir, "serve.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, logs, _ := startServe(t, dir, "serve.yaml")
	line, _ := logs.wait(t, 0, "listening line", msg("listening", "what", "service"))
	addr := line["addr"].(string)
	logs.wait(t, 0, "first run", msg("run finished", "trigger", "schedule"))
	_, at := logs.wait(t, 0, "the feed", msg("change feed started", "resuming", false))

	addUsers(t, dir, "u-feed", 2)
	line, _ = logs.wait(t, at, "feed run", msg("run finished", "trigger", "feed"))
	if line["result"] != "success" || line["created"] != float64(2) {
		t.Fatalf("feed run: %v", line)
	}
	var text string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, text = getText(t, "http://"+addr+"/metrics")
		if strings.Contains(text, `scimbridge_change_to_apply_seconds_count{source="file"} 2`) {
			break
		}
	}
	for _, want := range []string{
		`scimbridge_change_to_apply_seconds_count{source="file"} 2`,
		`scimbridge_feed_state{source="file",state="watching"} 1`,
		`scimbridge_source_reads_total{kind="full"} 1`,
		`scimbridge_source_reads_total{kind="targeted"} 1`,
		`scimbridge_feed_cursor_age_seconds{source="file"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if _, page := getText(t, "http://"+addr+"/"); !strings.Contains(page, "Change feed (file)") || !strings.Contains(page, "(2 changes)") {
		t.Errorf("the status page does not show the feed:\n%s", page)
	}
}
