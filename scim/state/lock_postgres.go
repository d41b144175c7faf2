package state

// The state lock on PostgreSQL: a session advisory lock on a connection of its own, held for as
// long as the run (or the leading serve replica) lives. PostgreSQL releases it when that session
// ends: the process exits or is killed (its socket closes), or the network drops and the server
// notices (TCP keepalives; set keepalives_idle in the URL to notice sooner). The holder's record
// (pid, host, command, run, start) is kept in the table lock_holder for the message a refused
// writer gets; it counts only while the session that wrote it still holds the lock.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// writerLockKey is the advisory lock of the one writer ("scimbrdg" in ASCII).
const writerLockKey int64 = 0x7363696d62726467

// ErrLockLost reports that a held lock is gone: its database session ended, or its lock file
// was removed (`state unlock --force`).
var ErrLockLost = errors.New("the state lock was lost")

// advisoryLock selects the rows of pg_locks of the advisory lock $1 granted in this database
// (pg_locks lists every database's; a bigint key is kept as classid: its high 32 bits, objid: its
// low 32 bits, objsubid 1).
const advisoryLock = `SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
	AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND l.classid::bigint = ($1::bigint >> 32) AND l.objid::bigint = ($1::bigint & 4294967295)`

// advisoryHeld is true when session %s holds the advisory lock $1 in this database.
const advisoryHeld = `EXISTS (` + advisoryLock + ` AND l.pid = %s)`

// connectLock opens the dedicated connection of a lock and makes sure the schema (its
// lock_holder table) is there.
func connectLock(ctx context.Context, rawURL string) (*pgx.Conn, string, error) {
	loc := RedactURL(rawURL)
	cfg, err := parsePostgresURL(rawURL)
	if err != nil {
		return nil, loc, err
	}
	cc := cfg.ConnConfig
	cc.RuntimeParams["application_name"] = "scimbridge lock"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, loc, fmt.Errorf("state: lock %s: %w", loc, err)
	}
	if err := migratePostgres(ctx, conn, loc, PostgresSchemaVersion, discardLog{}); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, loc, err
	}
	return conn, loc, nil
}

type discardLog struct{}

func (discardLog) Debug(string, ...any) {}

func acquirePostgresLock(ctx context.Context, rawURL string, info LockInfo, wait time.Duration) (*Lock, error) {
	conn, loc, err := connectLock(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	l, err := pollLock(ctx, loc, wait, func() (*Lock, error) {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", writerLockKey).Scan(&ok); err != nil {
			return nil, fmt.Errorf("state: lock %s: %w", loc, err)
		}
		if !ok {
			return nil, nil
		}
		l := &Lock{path: loc, pg: conn, info: info}
		if err := l.writePG(ctx); err != nil {
			_ = l.Release()
			return nil, err
		}
		return l, nil
	}, func() (LockInfo, bool) { return readPGHolder(ctx, conn) })
	if l == nil {
		conn.Close(context.WithoutCancel(ctx)) // a no-op after Release
	}
	return l, err
}

// writePG records the holder, tied to this session's pid.
func (l *Lock) writePG(ctx context.Context) error {
	b, err := jsonLine(l.info)
	if err != nil {
		return err
	}
	_, err = l.pg.Exec(ctx, `INSERT INTO lock_holder (lock_key, pid, info) VALUES ($1, pg_backend_pid(), $2)
ON CONFLICT (lock_key) DO UPDATE SET pid = excluded.pid, info = excluded.info`, writerLockKey, string(b))
	if err != nil {
		return fmt.Errorf("state: write lock holder in %s: %w", l.path, err)
	}
	return nil
}

// readPGHolder reads the holder's record, if the session that wrote it holds the lock, waiting up
// to holderWrite for a holder that has just taken the lock to write it.
func readPGHolder(ctx context.Context, conn *pgx.Conn) (LockInfo, bool) {
	deadline := time.Now().Add(holderWrite)
	for {
		var raw string
		err := conn.QueryRow(ctx, "SELECT h.info FROM lock_holder h WHERE h.lock_key = $1 AND "+fmt.Sprintf(advisoryHeld, "h.pid"), writerLockKey).Scan(&raw)
		if err == nil {
			if info, ok := parseLockInfo([]byte(raw)); ok {
				return info, true
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil || (err != nil && !errors.Is(err, pgx.ErrNoRows)) {
			return LockInfo{}, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkPG reports ErrLockLost unless this lock's session is alive and holds the lock.
func (l *Lock) checkPG(ctx context.Context) error {
	var held bool
	err := l.pg.QueryRow(ctx, "SELECT "+fmt.Sprintf(advisoryHeld, "pg_backend_pid()"), writerLockKey).Scan(&held)
	if err != nil {
		return fmt.Errorf("state: lock %s: %w: %w", l.path, ErrLockLost, err)
	}
	if !held {
		return fmt.Errorf("state: lock %s: %w: the session no longer holds it", l.path, ErrLockLost)
	}
	return nil
}

// releasePG lets go of the lock and closes its session (which alone would release it).
func (l *Lock) releasePG() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := l.pg.Exec(ctx, "DELETE FROM lock_holder WHERE lock_key = $1 AND pid = pg_backend_pid()", writerLockKey)
	if err == nil {
		_, err = l.pg.Exec(ctx, "SELECT pg_advisory_unlock($1)", writerLockKey)
	}
	return errors.Join(err, l.pg.Close(ctx))
}

// lockedPostgres reports whether a session holds the writer lock of the database, and who.
func lockedPostgres(ctx context.Context, rawURL string) (bool, LockInfo, bool, error) {
	conn, loc, err := connectLock(ctx, rawURL)
	if err != nil {
		return false, LockInfo{}, false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var held bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS ("+advisoryLock+")", writerLockKey).Scan(&held); err != nil {
		return false, LockInfo{}, false, fmt.Errorf("state: lock %s: %w", loc, err)
	}
	if !held {
		return false, LockInfo{}, false, nil
	}
	info, known := readPGHolder(ctx, conn)
	return true, info, known, nil
}

// forceUnlockPostgres ends the database session that holds the writer lock
// (pg_terminate_backend), which releases it. The holder's next write to the state fails; a
// holder fenced by a leader term cannot write after the next term begins.
func forceUnlockPostgres(ctx context.Context, rawURL string) error {
	conn, loc, err := connectLock(ctx, rawURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(h.pid) FROM ("+advisoryLock+") AS h", writerLockKey)
	if err != nil {
		return fmt.Errorf("state: end the session holding the lock of %s: %w", loc, err)
	}
	return nil
}
