package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// applicationID marks a SQLite file as a scimbridge state file (PRAGMA application_id); it is
// "scbs" in ASCII.
const applicationID = 0x73636273

// migrations brings the schema from version i to i+1; PRAGMA user_version holds the version.
// Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: the first schema.
	`
CREATE TABLE objects (
	kind        TEXT NOT NULL CHECK (kind IN ('user', 'group')),
	external_id TEXT NOT NULL,
	target_id   TEXT NOT NULL,
	data        TEXT NOT NULL,
	hash        TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	PRIMARY KEY (kind, external_id)
) WITHOUT ROWID;

CREATE TABLE pending (
	kind        TEXT NOT NULL CHECK (kind IN ('user', 'group')),
	external_id TEXT NOT NULL,
	PRIMARY KEY (kind, external_id)
) WITHOUT ROWID;

CREATE TABLE members (
	group_kind        TEXT NOT NULL DEFAULT 'group' CHECK (group_kind = 'group'),
	group_external_id TEXT NOT NULL,
	user_external_id  TEXT NOT NULL,
	PRIMARY KEY (group_external_id, user_external_id),
	FOREIGN KEY (group_kind, group_external_id) REFERENCES objects (kind, external_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user_external_id);

CREATE TABLE meta (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE runs (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	trigger    TEXT NOT NULL,
	dry_run    INTEGER NOT NULL,
	started_at TEXT NOT NULL,
	ended_at   TEXT,
	result     TEXT NOT NULL DEFAULT '',
	counts     TEXT NOT NULL DEFAULT '{}',
	errors     TEXT NOT NULL DEFAULT '[]',
	plan       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_open ON runs (id) WHERE ended_at IS NULL;
`,
	// 2: when each pending create was recorded (so that an object found by externalId is claimed
	// only when this create could have made it), and the target objects scimbridge does not own
	// that the last full read saw (so that a trusted run reports the same clashes as a full read).
	`
ALTER TABLE pending ADD COLUMN created_at TEXT NOT NULL DEFAULT '';

CREATE TABLE unowned (
	kind        TEXT NOT NULL CHECK (kind IN ('user', 'group')),
	target_id   TEXT NOT NULL,
	external_id TEXT NOT NULL DEFAULT '',
	name        TEXT NOT NULL,
	PRIMARY KEY (kind, target_id)
) WITHOUT ROWID;
`,
	// 3: kinds are open (permission sets, account assignments, ... beside users and groups), so
	// the kind columns lose their CHECK; SQLite drops a CHECK only by rebuilding the table. The
	// memberships are set aside while objects is rebuilt, since dropping a parent table deletes
	// its rows first (and ON DELETE CASCADE would take the memberships with them). And the leader
	// term that fences a replaced leader (see Fence).
	`
CREATE TEMP TABLE members_v2 AS SELECT group_external_id, user_external_id FROM members;
DELETE FROM members;

CREATE TABLE objects_v3 (
	kind        TEXT NOT NULL CHECK (kind <> ''),
	external_id TEXT NOT NULL,
	target_id   TEXT NOT NULL,
	data        TEXT NOT NULL,
	hash        TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	PRIMARY KEY (kind, external_id)
) WITHOUT ROWID;
INSERT INTO objects_v3 SELECT kind, external_id, target_id, data, hash, updated_at FROM objects;
DROP TABLE objects;
ALTER TABLE objects_v3 RENAME TO objects;

CREATE TABLE pending_v3 (
	kind        TEXT NOT NULL CHECK (kind <> ''),
	external_id TEXT NOT NULL,
	created_at  TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (kind, external_id)
) WITHOUT ROWID;
INSERT INTO pending_v3 SELECT kind, external_id, created_at FROM pending;
DROP TABLE pending;
ALTER TABLE pending_v3 RENAME TO pending;

CREATE TABLE unowned_v3 (
	kind        TEXT NOT NULL CHECK (kind <> ''),
	target_id   TEXT NOT NULL,
	external_id TEXT NOT NULL DEFAULT '',
	name        TEXT NOT NULL,
	PRIMARY KEY (kind, target_id)
) WITHOUT ROWID;
INSERT INTO unowned_v3 SELECT kind, target_id, external_id, name FROM unowned;
DROP TABLE unowned;
ALTER TABLE unowned_v3 RENAME TO unowned;

INSERT INTO members (group_external_id, user_external_id) SELECT group_external_id, user_external_id FROM temp.members_v2;
DROP TABLE temp.members_v2;

CREATE TABLE leader (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	term        INTEGER NOT NULL,
	holder      TEXT NOT NULL,
	acquired_at TEXT NOT NULL
);
INSERT INTO leader (id, term, holder, acquired_at) VALUES (1, 0, '', '');
`,
	// 4: each user's userName and group's displayName lower-cased (strings.ToLower, so computed
	// in Go: see names.go), indexed by kind, so that ObjectsByName finds who holds a name without
	// reading every object, and the hash of the data it was computed from, so that the rows an
	// older build writes (which leaves the name alone) are found by a small partial index. Other
	// kinds leave the name empty. sqliteFillNames fills the names of the rows already there, in
	// this migration's transaction.
	`
ALTER TABLE objects ADD COLUMN name_lower TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN name_hash TEXT NOT NULL DEFAULT '';
UPDATE objects SET name_hash = hash;
CREATE INDEX objects_by_name ON objects (kind, name_lower);
CREATE INDEX objects_unnamed ON objects (kind, external_id) WHERE name_hash <> hash;
`,
}

// migrationFills are the Go halves of migrations, by the version they bring the schema to: each
// runs after its migration's SQL, in the same transaction. Append only, like migrations.
var migrationFills = map[int]func(context.Context, *sql.Tx) error{
	4: sqliteFillNames,
}

// SchemaVersion is the schema version this build writes (PRAGMA user_version): the number of
// migrations.
const SchemaVersion = 4

// migrate checks that the file is ours and applies the migrations it lacks, each in its own
// transaction together with the new user_version. A file already up to date is only read. Each
// migration step re-reads the version inside its (immediate) transaction, so two processes opening
// a new or old file at once never apply a step twice or take the other's fresh tables for a
// foreign schema.
func (s *SQLite) migrate(ctx context.Context) error {
	if len(migrations) != SchemaVersion {
		return fmt.Errorf("state: open %s: %d migrations for schema version %d: build is broken", s.path, len(migrations), SchemaVersion)
	}
	version, err := s.checkSchema(ctx, s.w)
	if err != nil || version == SchemaVersion {
		return err
	}
	for {
		var done bool
		err := s.write(ctx, func(tx *sql.Tx) error {
			v, err := s.checkSchema(ctx, tx)
			if err != nil || v == SchemaVersion {
				done = true
				return err
			}
			if v == 0 {
				var tables int
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil {
					return fmt.Errorf("list tables: %w", err)
				}
				if tables > 0 {
					return &schemaError{fmt.Errorf("state: open %s: holds %d unknown schema objects: %w", s.path, tables, ErrForeignFile)}
				}
			}
			version = v + 1
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return err
			}
			if fill := migrationFills[v+1]; fill != nil {
				if err := fill(ctx, tx); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1))
			return err
		})
		if err != nil {
			var se *schemaError
			if errors.As(err, &se) {
				return err
			}
			return fmt.Errorf("state: open %s: migrate schema to version %d: %w", s.path, version, err)
		}
		if done {
			return nil
		}
		s.log.Debug("state schema migrated", "path", s.path, "version", version)
	}
}

// schemaError is a check of the file's schema that failed; it names the file already.
type schemaError struct{ err error }

func (e *schemaError) Error() string { return e.err.Error() }
func (e *schemaError) Unwrap() error { return e.err }

// checkSchema reads the schema version and refuses a file that is not ours or is too new.
func (s *SQLite) checkSchema(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var version, appID int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, &schemaError{fmt.Errorf("state: open %s: read schema version: %w", s.path, err)}
	}
	if err := q.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return 0, &schemaError{fmt.Errorf("state: open %s: read application id: %w", s.path, err)}
	}
	if appID != 0 && appID != applicationID {
		return 0, &schemaError{fmt.Errorf("state: open %s: application id %#x: %w", s.path, appID, ErrForeignFile)}
	}
	if version > SchemaVersion {
		return 0, &schemaError{fmt.Errorf("state: open %s: schema version %d, this build knows up to %d: %w",
			s.path, version, SchemaVersion, ErrSchemaTooNew)}
	}
	return version, nil
}
