// Package pgtest starts a real PostgreSQL for tests: Debian's server binaries (initdb and
// postgres from /usr/lib/postgresql/*/bin, package postgresql) in a temporary folder on a free
// port of 127.0.0.1, run as the postgres system user when the tests run as root. One server serves
// a whole test binary; each test gets a fresh database of its own.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) } // or call pgtest.Stop() after m.Run()
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.URL(t) // postgres://...; the database is dropped when t ends
//	}
//
// Without the server binaries a test skips saying what to install; in CI (CI=true) it fails
// instead. SCIMBRIDGE_TEST_POSTGRES_URL names an existing server to use instead (a superuser's
// URL: tests create and drop databases on it); SCIMBRIDGE_PGTEST_DURABLE=1 keeps fsync and
// synchronous commits on (see EnvDurable).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names an existing PostgreSQL server to use instead of starting one.
const EnvURL = "SCIMBRIDGE_TEST_POSTGRES_URL"

// EnvDurable, set to anything, starts the server with PostgreSQL's durable defaults (fsync,
// synchronous commits, full page writes), for benchmarks that compare commit costs. Without it
// the server trades durability against a machine crash for speed, as tests need only survive the
// crash of a client.
const EnvDurable = "SCIMBRIDGE_PGTEST_DURABLE"

var (
	once     sync.Once
	server   *Server
	errStart error
	dbSeq    atomic.Int64
)

// Server is a PostgreSQL server started for the tests (or the one EnvURL names).
type Server struct {
	// AdminURL is a superuser's URL of the server's "postgres" database.
	AdminURL string
	dir      string
	cmd      *exec.Cmd
	exited   chan struct{}
	external bool
}

// Main runs the tests of a package that uses the server, then stops the server (if one was
// started) and exits with the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the binary's server, if one was started: for a TestMain that does more than Main.
// (Should the test binary die first, the kernel stops the server; only its folder stays.)
func Stop() {
	if server != nil {
		server.stop()
	}
}

// Start returns the binary's server, starting it on first use. It skips t (fails it in CI) when
// there is no server to start.
func Start(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { server, errStart = start() })
	if errStart != nil {
		var missing *missingError
		if errors.As(errStart, &missing) && os.Getenv("CI") != "true" {
			t.Skipf("pgtest: %v", errStart)
		}
		t.Fatalf("pgtest: %v", errStart)
	}
	return server
}

// URL returns the URL of a new, empty database on the binary's server, owned by a superuser. It
// goes with the server when the test binary ends (on a server named by EnvURL, when t ends). The URL holds a password, so that tests can check it never shows.
func URL(t testing.TB) string {
	t.Helper()
	s := Start(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	if !s.external {
		return s.urlOf(t, name) // the whole server goes at the end; a DROP DATABASE costs a checkpoint
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.urlOf(t, name)
}

func (s *Server) urlOf(t testing.TB, name string) string {
	u, err := url.Parse(s.AdminURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.AdminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// missingError says that no server binaries were found.
type missingError struct{ msg string }

func (e *missingError) Error() string { return e.msg }

// binDir finds the newest Debian PostgreSQL server, or initdb on PATH.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", &missingError{"no PostgreSQL server binaries (initdb, postgres) in /usr/lib/postgresql/*/bin or on PATH; " +
		"install the Debian package postgresql (.ci/test-deps.sh does), or set " + EnvURL}
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func start() (*Server, error) {
	if u := os.Getenv(EnvURL); u != "" {
		return &Server{AdminURL: u, external: true}, nil
	}
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "scimbridge-pgtest-")
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 { // postgres refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, &missingError{"running as root, and there is no postgres system user to run the server as: " + err.Error()}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	password := fmt.Sprintf("pw-%d-%d", os.Getpid(), time.Now().UnixNano())
	data := filepath.Join(dir, "data")
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		_ = os.Chown(pwfile, int(cred.Uid), int(cred.Gid))
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(out))
	}
	var lastErr error
	for range 3 { // a free port may be taken between the probe and the server's bind
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s, err := run(bin, dir, data, port, password, cred)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// run starts postgres in the foreground, as a child that the kernel stops (SIGQUIT: immediate
// shutdown) if the test binary dies, and waits until it accepts connections.
func run(bin, dir, data string, port int, password string, cred *syscall.Credential) (*Server, error) {
	s := &Server{
		AdminURL: fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", url.QueryEscape(password), port),
		dir:      dir,
		exited:   make(chan struct{}),
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig is sent when the thread that started the child exits: keep this one.
		runtime.LockOSThread()
		args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", dir,
			"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=64MB"}
		if os.Getenv(EnvDurable) == "" {
			args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
		if err := cmd.Start(); err != nil {
			started <- err
			close(s.exited)
			return
		}
		s.cmd = cmd
		started <- nil
		_ = cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.AdminURL)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return nil, fmt.Errorf("postgres on port %d exited: %s", port, lastLines(log))
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("postgres on port %d did not accept connections within 30s: %w", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down (fast shutdown, then immediate) and removes its folder.
func (s *Server) stop() {
	if s.external {
		return
	}
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Signal(syscall.SIGQUIT)
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
