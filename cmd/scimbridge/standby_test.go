package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeStandby runs two serve processes on one state store (two replicas by mistake): the one
// that holds the state lock syncs, the other runs nothing and reports "standby" on /readyz until
// the first one stops, then takes over.
func TestServeStandby(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the binary")
	}
	const token = "emulator-token-7007"
	scimURL := startEmulator(t, token, 0)
	dir := quickstart(t)
	cfg := fmt.Sprintf(`source: {type: file, file: {path: directory.yaml}}
target: {scim_url: %q, token: %q}
service: {listen: "127.0.0.1:0", interval: 1h, min_trigger_gap: 0s, shutdown_grace: 30s}
log: {format: json}
data_dir: data
`, scimURL, token)
	if err := os.WriteFile(filepath.Join(dir, "serve.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	first, logsA, exitedA := startServe(t, dir, "serve.yaml")
	if line, _ := logsA.wait(t, 0, "first replica's run", msg("run finished", "trigger", "schedule")); line["result"] != "success" {
		t.Fatalf("first replica's run: %v", line)
	}

	_, logsB, exitedB := startServe(t, dir, "serve.yaml")
	line, _ := logsB.wait(t, 0, "listening line", msg("listening", "what", "service"))
	addrB := line["addr"].(string)
	line, atB := logsB.wait(t, 0, "standby line", msg("standby: not running syncs"))
	if reason := fmt.Sprint(line["reason"]); !strings.Contains(reason, fmt.Sprintf("pid %d", first.Process.Pid)) {
		t.Errorf("standby reason %q does not name the holder, pid %d", reason, first.Process.Pid)
	}
	code, body := getText(t, "http://"+addrB+"/readyz")
	if code != 503 || !strings.Contains(body, "standby") {
		t.Errorf("/readyz of the standby: got %d %q, want 503 standby", code, body)
	}
	if strings.Contains(logsB.String(), `"run started"`) {
		t.Errorf("the standby ran a sync:\n%s", logsB.String())
	}

	// The first replica stops; the standby takes the lock within its retry interval and syncs.
	stopped := time.Now()
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exitedA; err != nil {
		t.Fatalf("first replica: %v\n%s", err, logsA.String())
	}
	logsB.wait(t, atB, "takeover", msg("took the state lock; this replica now runs the syncs"))
	if line, _ := logsB.wait(t, atB, "second replica's run", msg("run finished")); line["result"] != "success" {
		t.Fatalf("second replica's run: %v", line)
	}
	t.Logf("the standby took over and synced %s after the first replica stopped", time.Since(stopped).Round(time.Millisecond))
	if code, body := getText(t, "http://"+addrB+"/readyz"); code != 200 {
		t.Errorf("/readyz after the takeover: got %d %q, want 200", code, body)
	}
	select {
	case err := <-exitedB:
		t.Fatalf("the second replica exited: %v", err)
	default:
	}
}
