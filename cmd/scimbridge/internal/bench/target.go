package bench

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// workDir returns the bench's working folder: dir, made if needed, or a new temporary folder
// (prefix names it) that cleanup removes. Either way the state files of an earlier run are
// removed: a fresh emulator needs a fresh state file, or the old one would claim objects that
// are gone.
func workDir(dir, prefix string) (string, func(), error) {
	cleanup := func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", prefix)
		if err != nil {
			return "", nil, err
		}
		dir, cleanup = d, func() { os.RemoveAll(d) }
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	for _, f := range []string{"state.db", "state.db-wal", "state.db-shm"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			cleanup()
			return "", nil, err
		}
	}
	return dir, cleanup, nil
}

// startTarget starts an emulator with the rate limit and latency given, served on a loopback
// port; it returns the emulator, its base URL and the function that stops both.
func startTarget(rps float64, latency time.Duration) (*emulator.Emulator, string, func(), error) {
	emu, err := emulator.New(emulator.Options{RateLimit: rps, Latency: latency})
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		emu.Close()
		return nil, "", nil, err
	}
	srv := &http.Server{Handler: emu.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		srv.Close()
		emu.Close()
	}
	return emu, "http://" + ln.Addr().String(), stop, nil
}
