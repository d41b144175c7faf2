package emulator

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Store errors, checked with errors.Is by the SCIM and identitystore front ends.
var (
	errNotFound  = errors.New("not found")
	errDuplicate = errors.New("duplicate")
)

const schemaSQL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT NOT NULL UNIQUE,
	user_name_lc TEXT NOT NULL UNIQUE,
	external_id  TEXT,
	email_lc     TEXT,
	manager_id   TEXT,
	doc          TEXT NOT NULL,
	created      INTEGER NOT NULL,
	modified     INTEGER NOT NULL,
	revision     INTEGER NOT NULL,
	created_by   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS users_external_id ON users(external_id);
CREATE INDEX IF NOT EXISTS users_email_lc ON users(email_lc);
CREATE INDEX IF NOT EXISTS users_manager_id ON users(manager_id);
CREATE TABLE IF NOT EXISTS groups (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	id              TEXT NOT NULL UNIQUE,
	display_name    TEXT NOT NULL,
	display_name_lc TEXT NOT NULL UNIQUE,
	external_id     TEXT,
	description     TEXT NOT NULL,
	created         INTEGER NOT NULL,
	modified        INTEGER NOT NULL,
	revision        INTEGER NOT NULL,
	created_by      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS groups_external_id ON groups(external_id);
CREATE TABLE IF NOT EXISTS memberships (
	group_id      TEXT NOT NULL,
	user_id       TEXT NOT NULL,
	membership_id TEXT NOT NULL,
	created       INTEGER NOT NULL,
	PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS memberships_user ON memberships(user_id, group_id);
CREATE UNIQUE INDEX IF NOT EXISTS memberships_id ON memberships(membership_id);
`

// userRec is a stored user: the SCIM document plus the bookkeeping around it.
type userRec struct {
	Seq       int64
	ID        string
	Doc       userDoc
	Created   time.Time
	Modified  time.Time
	Revision  int64
	CreatedBy string
}

// groupRec is a stored group.
type groupRec struct {
	Seq         int64
	ID          string
	DisplayName string
	ExternalID  string
	Description string
	Created     time.Time
	Modified    time.Time
	Revision    int64
	CreatedBy   string
}

// memberRec is one stored membership.
type memberRec struct {
	GroupID      string
	UserID       string
	MembershipID string
	Created      time.Time
}

type store struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt
}

const (
	userCols  = `seq, id, doc, created, modified, revision, created_by`
	groupCols = `seq, id, display_name, external_id, description, created, modified, revision, created_by`
)

var statements = map[string]string{
	"metaGet":            `SELECT value FROM meta WHERE key = ?`,
	"metaPut":            `INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
	"userInsert":         `INSERT INTO users(id, user_name_lc, external_id, email_lc, manager_id, doc, created, modified, revision, created_by) VALUES(?,?,?,?,?,?,?,?,?,?)`,
	"userUpdate":         `UPDATE users SET user_name_lc=?, external_id=?, email_lc=?, manager_id=?, doc=?, modified=?, revision=revision+1 WHERE id=?`,
	"userDelete":         `DELETE FROM users WHERE id = ?`,
	"userGet":            `SELECT ` + userCols + ` FROM users WHERE id = ?`,
	"userExists":         `SELECT 1 FROM users WHERE id = ?`,
	"usersAll":           `SELECT ` + userCols + ` FROM users WHERE seq > ? ORDER BY seq LIMIT ?`,
	"usersByName":        `SELECT ` + userCols + ` FROM users WHERE user_name_lc = ? AND seq > ? ORDER BY seq LIMIT ?`,
	"usersByExternal":    `SELECT ` + userCols + ` FROM users WHERE external_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
	"usersByEmail":       `SELECT ` + userCols + ` FROM users WHERE email_lc = ? AND seq > ? ORDER BY seq LIMIT ?`,
	"usersClearManager":  `UPDATE users SET manager_id = NULL WHERE manager_id = ?`,
	"usersWithManager":   `SELECT ` + userCols + ` FROM users WHERE manager_id = ?`,
	"usersInGroup":       `SELECT u.seq, u.id, u.doc, u.created, u.modified, u.revision, u.created_by FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? AND m.user_id > ? ORDER BY m.user_id LIMIT ?`,
	"groupInsert":        `INSERT INTO groups(id, display_name, display_name_lc, external_id, description, created, modified, revision, created_by) VALUES(?,?,?,?,?,?,?,?,?)`,
	"groupUpdate":        `UPDATE groups SET display_name=?, display_name_lc=?, external_id=?, description=?, modified=?, revision=revision+1 WHERE id=?`,
	"groupTouch":         `UPDATE groups SET modified=?, revision=revision+1 WHERE id=?`,
	"groupDelete":        `DELETE FROM groups WHERE id = ?`,
	"groupGet":           `SELECT ` + groupCols + ` FROM groups WHERE id = ?`,
	"groupExists":        `SELECT 1 FROM groups WHERE id = ?`,
	"groupsAll":          `SELECT ` + groupCols + ` FROM groups WHERE seq > ? ORDER BY seq LIMIT ?`,
	"groupsByName":       `SELECT ` + groupCols + ` FROM groups WHERE display_name_lc = ? AND seq > ? ORDER BY seq LIMIT ?`,
	"groupsByExternal":   `SELECT ` + groupCols + ` FROM groups WHERE external_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
	"groupsOfUser":       `SELECT g.seq, g.id, g.display_name, g.external_id, g.description, g.created, g.modified, g.revision, g.created_by FROM memberships m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ? AND m.group_id > ? ORDER BY m.group_id LIMIT ?`,
	"memberInsert":       `INSERT INTO memberships(group_id, user_id, membership_id, created) VALUES(?,?,?,?) ON CONFLICT DO NOTHING`,
	"memberDelete":       `DELETE FROM memberships WHERE group_id = ? AND user_id = ?`,
	"memberGet":          `SELECT group_id, user_id, membership_id, created FROM memberships WHERE group_id = ? AND user_id = ?`,
	"memberByID":         `SELECT group_id, user_id, membership_id, created FROM memberships WHERE membership_id = ?`,
	"membersOfGroup":     `SELECT group_id, user_id, membership_id, created FROM memberships WHERE group_id = ? AND user_id > ? ORDER BY user_id LIMIT ?`,
	"membershipsOfUser":  `SELECT group_id, user_id, membership_id, created FROM memberships WHERE user_id = ? AND group_id > ? ORDER BY group_id LIMIT ?`,
	"membersDeleteGroup": `DELETE FROM memberships WHERE group_id = ?`,
	"membersDeleteUser":  `DELETE FROM memberships WHERE user_id = ?`,
	"membershipsAll":     `SELECT group_id, user_id, membership_id, created FROM memberships ORDER BY group_id, user_id`,
}

// openStore opens (and creates) the SQLite database at path, or an in-memory one when path is "".
func openStore(ctx context.Context, path string) (*store, error) {
	dsn := ":memory:"
	if path != "" {
		dsn = "file:" + path
	}
	dsn += "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(off)&_txlock=immediate"
	if path != "" {
		dsn += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("emulator: open database: %w", err)
	}
	// One connection: writes are serialised (SQLite allows one writer anyway), and an
	// in-memory database is private to its connection.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if _, err := db.ExecContext(ctx, schemaSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("emulator: create schema in %q: %w", path, err)
	}
	s := &store{db: db, stmts: make(map[string]*sql.Stmt, len(statements))}
	for name, q := range statements {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("emulator: prepare %s: %w", name, err)
		}
		s.stmts[name] = st
	}
	return s, nil
}

func (s *store) close() error {
	for _, st := range s.stmts {
		st.Close()
	}
	return s.db.Close()
}

// q returns a prepared statement, bound to tx when tx is not nil.
func (s *store) q(ctx context.Context, tx *sql.Tx, name string) *sql.Stmt {
	st := s.stmts[name]
	if tx != nil {
		return tx.StmtContext(ctx, st)
	}
	return st
}

// inTx runs fn in a write transaction.
func (s *store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func (s *store) metaGet(ctx context.Context, key string) (string, error) {
	var v string
	err := s.q(ctx, nil, "metaGet").QueryRowContext(ctx, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (s *store) metaPut(ctx context.Context, key, value string) error {
	_, err := s.q(ctx, nil, "metaPut").ExecContext(ctx, key, value)
	return err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// userIndexCols returns the indexed columns derived from a user document.
func userIndexCols(d *userDoc) (nameLC, extID, emailLC, managerID any) {
	email := ""
	if len(d.Emails) > 0 {
		email = strings.ToLower(d.Emails[0].Value)
	}
	mgr := ""
	if d.Enterprise != nil && d.Enterprise.Manager != nil {
		mgr = d.Enterprise.Manager.Value
	}
	return strings.ToLower(d.UserName), nullable(d.ExternalID), nullable(email), nullable(mgr)
}

func (s *store) insertUser(ctx context.Context, tx *sql.Tx, u *userRec) error {
	doc, err := json.Marshal(&u.Doc)
	if err != nil {
		return fmt.Errorf("encode user: %w", err)
	}
	name, ext, email, mgr := userIndexCols(&u.Doc)
	res, err := s.q(ctx, tx, "userInsert").ExecContext(ctx, u.ID, name, ext, email, mgr, doc,
		u.Created.UnixNano(), u.Modified.UnixNano(), u.Revision, u.CreatedBy)
	if isUniqueViolation(err) {
		return errDuplicate
	}
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	u.Seq, _ = res.LastInsertId()
	return nil
}

// updateUser stores u.Doc for u.ID. When wantRev is positive the stored revision must match.
func (s *store) updateUser(ctx context.Context, tx *sql.Tx, u *userRec) error {
	doc, err := json.Marshal(&u.Doc)
	if err != nil {
		return fmt.Errorf("encode user: %w", err)
	}
	name, ext, email, mgr := userIndexCols(&u.Doc)
	res, err := s.q(ctx, tx, "userUpdate").ExecContext(ctx, name, ext, email, mgr, doc, u.Modified.UnixNano(), u.ID)
	if isUniqueViolation(err) {
		return errDuplicate
	}
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	u.Revision++
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanUser(sc scanner) (userRec, error) {
	var (
		u       userRec
		doc     string
		cr, mod int64
	)
	if err := sc.Scan(&u.Seq, &u.ID, &doc, &cr, &mod, &u.Revision, &u.CreatedBy); err != nil {
		return u, err
	}
	if err := json.Unmarshal([]byte(doc), &u.Doc); err != nil {
		return u, fmt.Errorf("decode stored user %s: %w", u.ID, err)
	}
	u.Created, u.Modified = time.Unix(0, cr).UTC(), time.Unix(0, mod).UTC()
	return u, nil
}

func scanGroup(sc scanner) (groupRec, error) {
	var (
		g       groupRec
		ext     sql.NullString
		cr, mod int64
	)
	err := sc.Scan(&g.Seq, &g.ID, &g.DisplayName, &ext, &g.Description, &cr, &mod, &g.Revision, &g.CreatedBy)
	g.ExternalID = ext.String
	g.Created, g.Modified = time.Unix(0, cr).UTC(), time.Unix(0, mod).UTC()
	return g, err
}

func scanMember(sc scanner) (memberRec, error) {
	var (
		m  memberRec
		cr int64
	)
	err := sc.Scan(&m.GroupID, &m.UserID, &m.MembershipID, &cr)
	m.Created = time.Unix(0, cr).UTC()
	return m, err
}

func (s *store) getUser(ctx context.Context, tx *sql.Tx, id string) (userRec, error) {
	u, err := scanUser(s.q(ctx, tx, "userGet").QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, errNotFound
	}
	if err != nil {
		return u, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

func (s *store) exists(ctx context.Context, tx *sql.Tx, stmt, id string) (bool, error) {
	var one int
	err := s.q(ctx, tx, stmt).QueryRowContext(ctx, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", stmt, err)
	}
	return true, nil
}

func (s *store) userExists(ctx context.Context, tx *sql.Tx, id string) (bool, error) {
	return s.exists(ctx, tx, "userExists", id)
}

func (s *store) groupExists(ctx context.Context, tx *sql.Tx, id string) (bool, error) {
	return s.exists(ctx, tx, "groupExists", id)
}

func (s *store) deleteUser(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.q(ctx, tx, "userDelete").ExecContext(ctx, id)
		if err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNotFound
		}
		if _, err := s.q(ctx, tx, "membersDeleteUser").ExecContext(ctx, id); err != nil {
			return fmt.Errorf("delete memberships of user: %w", err)
		}
		// Users that reported to the deleted user lose their manager, as in Identity Center.
		rows, err := s.q(ctx, tx, "usersWithManager").QueryContext(ctx, id)
		if err != nil {
			return fmt.Errorf("find reports: %w", err)
		}
		var reports []userRec
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				rows.Close()
				return err
			}
			reports = append(reports, u)
		}
		rows.Close()
		for i := range reports {
			reports[i].Doc.Enterprise.Manager = nil
			if reports[i].Doc.Enterprise.empty() {
				reports[i].Doc.Enterprise = nil
			}
			reports[i].Modified = time.Now().UTC()
			if err := s.updateUser(ctx, tx, &reports[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) queryUsers(ctx context.Context, tx *sql.Tx, stmt string, args ...any) ([]userRec, error) {
	rows, err := s.q(ctx, tx, stmt).QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []userRec
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *store) queryGroups(ctx context.Context, tx *sql.Tx, stmt string, args ...any) ([]groupRec, error) {
	rows, err := s.q(ctx, tx, stmt).QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	defer rows.Close()
	var out []groupRec
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, fmt.Errorf("list groups: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func (s *store) queryMembers(ctx context.Context, tx *sql.Tx, stmt string, args ...any) ([]memberRec, error) {
	rows, err := s.q(ctx, tx, stmt).QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("list memberships: %w", err)
	}
	defer rows.Close()
	var out []memberRec
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, fmt.Errorf("list memberships: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *store) insertGroup(ctx context.Context, tx *sql.Tx, g *groupRec) error {
	res, err := s.q(ctx, tx, "groupInsert").ExecContext(ctx, g.ID, g.DisplayName, strings.ToLower(g.DisplayName),
		nullable(g.ExternalID), g.Description, g.Created.UnixNano(), g.Modified.UnixNano(), g.Revision, g.CreatedBy)
	if isUniqueViolation(err) {
		return errDuplicate
	}
	if err != nil {
		return fmt.Errorf("insert group: %w", err)
	}
	g.Seq, _ = res.LastInsertId()
	return nil
}

func (s *store) updateGroup(ctx context.Context, tx *sql.Tx, g *groupRec) error {
	res, err := s.q(ctx, tx, "groupUpdate").ExecContext(ctx, g.DisplayName, strings.ToLower(g.DisplayName),
		nullable(g.ExternalID), g.Description, g.Modified.UnixNano(), g.ID)
	if isUniqueViolation(err) {
		return errDuplicate
	}
	if err != nil {
		return fmt.Errorf("update group: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	g.Revision++
	return nil
}

func (s *store) getGroup(ctx context.Context, tx *sql.Tx, id string) (groupRec, error) {
	g, err := scanGroup(s.q(ctx, tx, "groupGet").QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return g, errNotFound
	}
	if err != nil {
		return g, fmt.Errorf("get group: %w", err)
	}
	return g, nil
}

func (s *store) deleteGroup(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.q(ctx, tx, "groupDelete").ExecContext(ctx, id)
		if err != nil {
			return fmt.Errorf("delete group: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNotFound
		}
		if _, err := s.q(ctx, tx, "membersDeleteGroup").ExecContext(ctx, id); err != nil {
			return fmt.Errorf("delete memberships of group: %w", err)
		}
		return nil
	})
}

// addMember adds uid to gid; it reports whether the membership is new.
func (s *store) addMember(ctx context.Context, tx *sql.Tx, gid, uid, membershipID string, now time.Time) (bool, error) {
	res, err := s.q(ctx, tx, "memberInsert").ExecContext(ctx, gid, uid, membershipID, now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("add member: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// removeMember removes uid from gid; it reports whether a membership was removed.
func (s *store) removeMember(ctx context.Context, tx *sql.Tx, gid, uid string) (bool, error) {
	res, err := s.q(ctx, tx, "memberDelete").ExecContext(ctx, gid, uid)
	if err != nil {
		return false, fmt.Errorf("remove member: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (s *store) getMember(ctx context.Context, tx *sql.Tx, gid, uid string) (memberRec, error) {
	m, err := scanMember(s.q(ctx, tx, "memberGet").QueryRowContext(ctx, gid, uid))
	if errors.Is(err, sql.ErrNoRows) {
		return m, errNotFound
	}
	if err != nil {
		return m, fmt.Errorf("get membership: %w", err)
	}
	return m, nil
}

func (s *store) getMemberByID(ctx context.Context, id string) (memberRec, error) {
	m, err := scanMember(s.q(ctx, nil, "memberByID").QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, errNotFound
	}
	if err != nil {
		return m, fmt.Errorf("get membership: %w", err)
	}
	return m, nil
}
