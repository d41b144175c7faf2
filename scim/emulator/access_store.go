package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// The access data (the organization, permission sets, assignments) is kept as JSON documents in
// one table, written through on every change, so that a data file keeps them across runs.
const accessSchemaSQL = `
CREATE TABLE IF NOT EXISTS access_objects (
	kind TEXT NOT NULL,
	id   TEXT NOT NULL,
	doc  TEXT NOT NULL,
	PRIMARY KEY (kind, id)
) WITHOUT ROWID;
`

func (s *store) accessInit(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, accessSchemaSQL); err != nil {
		return fmt.Errorf("emulator: create access schema: %w", err)
	}
	return nil
}

func (s *store) accessPut(ctx context.Context, kind, id string, v any) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("emulator: encode %s %s: %w", kind, id, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO access_objects(kind, id, doc) VALUES(?,?,?)
		ON CONFLICT(kind, id) DO UPDATE SET doc = excluded.doc`, kind, id, string(doc))
	if err != nil {
		return fmt.Errorf("emulator: store %s %s: %w", kind, id, err)
	}
	return nil
}

func (s *store) accessDelete(ctx context.Context, kind, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM access_objects WHERE kind = ? AND id = ?`, kind, id); err != nil {
		return fmt.Errorf("emulator: delete %s %s: %w", kind, id, err)
	}
	return nil
}

// accessLoad reads the stored access data into a; it returns the organization, nil when none is
// stored yet.
func (s *store) accessLoad(ctx context.Context, a *accessState) (*orgDoc, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, id, doc FROM access_objects ORDER BY kind, id`)
	if err != nil {
		return nil, fmt.Errorf("emulator: read access data: %w", err)
	}
	defer rows.Close()
	var org *orgDoc
	for rows.Next() {
		var kind, id, doc string
		if err := rows.Scan(&kind, &id, &doc); err != nil {
			return nil, fmt.Errorf("emulator: read access data: %w", err)
		}
		switch kind {
		case "org":
			org = &orgDoc{}
			err = json.Unmarshal([]byte(doc), org)
		case "permission_set":
			ps := &permSet{}
			if err = json.Unmarshal([]byte(doc), ps); err == nil {
				a.permSets[ps.ARN] = ps
			}
		case "assignment":
			var k assignmentKey
			if err = json.Unmarshal([]byte(doc), &k); err == nil {
				a.assignments[k.id()] = k
			}
		case "seq":
			a.psSeq, err = strconv.Atoi(doc)
		}
		if err != nil {
			return nil, fmt.Errorf("emulator: decode stored %s %s: %w", kind, id, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("emulator: read access data: %w", err)
	}
	return org, nil
}
