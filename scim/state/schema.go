package state

import (
	"context"
	"database/sql"
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
}

// SchemaVersion is the schema version this build writes (PRAGMA user_version): the number of
// migrations.
const SchemaVersion = 2

// migrate checks that the file is ours and applies the migrations it lacks, each in its own
// transaction together with the new user_version.
func (s *Store) migrate(ctx context.Context) error {
	var version, appID int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("state: open %s: read schema version: %w", s.path, err)
	}
	if err := s.w.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fmt.Errorf("state: open %s: read application id: %w", s.path, err)
	}
	if appID != 0 && appID != applicationID {
		return fmt.Errorf("state: open %s: application id %#x: %w", s.path, appID, ErrForeignFile)
	}
	if version == 0 {
		var tables int
		if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil {
			return fmt.Errorf("state: open %s: list tables: %w", s.path, err)
		}
		if tables > 0 {
			return fmt.Errorf("state: open %s: holds %d unknown schema objects: %w", s.path, tables, ErrForeignFile)
		}
	}
	if len(migrations) != SchemaVersion {
		return fmt.Errorf("state: open %s: %d migrations for schema version %d: build is broken", s.path, len(migrations), SchemaVersion)
	}
	if version > SchemaVersion {
		return fmt.Errorf("state: open %s: schema version %d, this build knows up to %d: %w",
			s.path, version, SchemaVersion, ErrSchemaTooNew)
	}
	for v := version; v < SchemaVersion; v++ {
		err := s.write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("state: open %s: migrate schema to version %d: %w", s.path, v+1, err)
		}
		s.log.Debug("state schema migrated", "path", s.path, "version", v+1)
	}
	return nil
}
