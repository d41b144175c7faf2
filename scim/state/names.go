package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Names: the objects table keeps, beside each user's and group's data, its name lower-cased
// (name_lower: the userName of a user, the displayName of a group), with an index on (kind,
// name_lower), so that ObjectsByName finds which owned object holds a name without reading every
// object. The plan compares names after strings.ToLower, so the column is computed in Go with it,
// never with SQL's lower() (SQLite's folds ASCII only, PostgreSQL's follows the collation). It is
// derived from the data: every write of an object's data writes it (PutObjects, Import), a dump
// does not carry it, and the migration that added it filled it in for the rows already there.
//
// A build from before the column can still write once it is there: a replica of an older
// version, open while a newer one migrates the store (a rolling upgrade), leaves name_lower as it
// was (or empty) when it writes an object's data. Every write of this build also records the
// data's hash in name_hash, so such a row is one whose name_hash is not its hash, and a partial
// index (objects_unnamed) holds exactly those, empty but for that window. ObjectsByName reads
// them too and decides from their data, so it neither misses nor wrongly finds one; the next
// write of the object by this build names it again. (PostgreSQL's partial index is on a stored
// generated column, name_stale, rather than on name_hash <> hash: ANALYZE keeps statistics of a
// column, so the planner knows the index is nearly empty, where it takes an inequality of two
// columns for true of nearly every row and would read the whole table.)

// nameLower is the name_lower column of an object of kind holding data: the userName of a user
// or the displayName of a group, as Object.User and Object.Group decode them, lower-cased with
// strings.ToLower. It is empty for other kinds, for data without the name, and for a name no
// store can hold as text (a NUL, from a JSON \u0000), which no lookup asks for.
func nameLower(kind Kind, data []byte) string {
	var name string
	switch kind {
	case KindUser:
		var u struct {
			UserName string `json:"userName"`
		}
		if json.Unmarshal(data, &u) != nil {
			return ""
		}
		name = u.UserName
	case KindGroup:
		var g struct {
			DisplayName string `json:"displayName"`
		}
		if json.Unmarshal(data, &g) != nil {
			return ""
		}
		name = g.DisplayName
	default:
		return ""
	}
	name = strings.ToLower(name)
	if checkText("name", name) != nil {
		return ""
	}
	return name
}

// lookupNames returns the names a lookup (ObjectsByName) can find, lower-cased with
// strings.ToLower, sorted and without duplicates, in a new slice. A name no store can hold
// (empty, not valid UTF-8, or holding a NUL byte) is unknown, so it is left out, as lookupIDs
// leaves out such ids.
func lookupNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" && checkText("name", n) == nil {
			out = append(out, strings.ToLower(n))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sqliteObjectsByName reads the objects of a kind (?1) whose name_lower is in a JSON array of
// strings (?2): one lookup of the index objects_by_name per name, the array being one parameter;
// and the objects of the kind an older build wrote (objects_unnamed), whose name_lower may be
// stale, for filterNamed to decide from their data. The indexes are named: without statistics,
// SQLite's planner prefers to read every object of the kind through the primary key, which
// gives the rows in externalId order without a sort.
const sqliteObjectsByName = "SELECT " + objectColumns + " FROM objects INDEXED BY objects_by_name WHERE kind = ?1 AND name_lower IN (SELECT value FROM json_each(?2))" +
	" UNION ALL SELECT " + objectColumns + " FROM objects INDEXED BY objects_unnamed WHERE kind = ?1 AND name_hash <> hash ORDER BY external_id"

// ObjectsByName returns the owned objects of kind whose name (userName of a user, displayName of
// a group, as recorded in the object's data) equals one of names once both are lower-cased with
// strings.ToLower, sorted by ExternalID (byte order). Unknown names, duplicates and names no
// store can hold are not an error; other kinds have no name and are never found. The list may be
// of any length: it is bound as one JSON array.
func (s *SQLite) ObjectsByName(ctx context.Context, kind Kind, names []string) ([]Object, error) {
	if err := kind.check(); err != nil {
		return nil, fmt.Errorf("state: list objects by name: %w", err)
	}
	keys := lookupNames(names)
	if len(keys) == 0 {
		return []Object{}, nil
	}
	list, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("state: list %ss by %d names: %w", kind, len(keys), err)
	}
	rows, err := s.r.QueryContext(ctx, sqliteObjectsByName, string(kind), string(list))
	if err != nil {
		return nil, fmt.Errorf("state: list %ss by %d names: %w", kind, len(keys), err)
	}
	defer rows.Close()
	objs, err := readObjects(make([]Object, 0, len(keys)), rows, kind)
	return filterNamed(objs, kind, keys), err
}

// pgObjectsByName is sqliteObjectsByName with the names as one text[].
const pgObjectsByName = "SELECT " + objectColumns + " FROM objects WHERE kind = $1 AND name_lower = ANY($2::text[])" +
	" UNION ALL SELECT " + objectColumns + " FROM objects WHERE kind = $1 AND name_stale ORDER BY external_id"

// ObjectsByName returns the owned objects of kind holding one of names, sorted by ExternalID
// (see SQLite.ObjectsByName).
func (s *Postgres) ObjectsByName(ctx context.Context, kind Kind, names []string) ([]Object, error) {
	if err := kind.check(); err != nil {
		return nil, fmt.Errorf("state: list objects by name: %w", err)
	}
	keys := lookupNames(names)
	if len(keys) == 0 {
		return []Object{}, nil
	}
	rows, err := s.pool.Query(ctx, pgObjectsByName, string(kind), keys)
	if err != nil {
		return nil, fmt.Errorf("state: list %ss by %d names: %w", kind, len(keys), err)
	}
	defer rows.Close()
	objs, err := readObjects(make([]Object, 0, len(keys)), rows, kind)
	return filterNamed(objs, kind, keys), err
}

// filterNamed keeps, of objs (sorted by ExternalID, as the ObjectsByName queries give them),
// those whose data holds one of keys (sorted), each once: the queries also give the objects an
// older build wrote, by their name_hash, whether or not their name is one of keys, and such an
// object whose stale name_lower matched comes twice. It decodes the name of each, which costs
// little beside the read since there are about as many objects as names.
func filterNamed(objs []Object, kind Kind, keys []string) []Object {
	out := objs[:0]
	prev := ""
	for _, o := range objs {
		if o.ExternalID == prev {
			continue
		}
		prev = o.ExternalID
		if _, ok := slices.BinarySearch(keys, nameLower(kind, o.Data)); ok {
			out = append(out, o)
		}
	}
	return out
}

// fillBatch is how many objects the migration that added name_lower names per batch.
const fillBatch = 1000

// namedRow is an object the fill reads: its externalId and data.
type namedRow struct {
	id   string
	data []byte
}

// fillNames fills name_lower of every user and group, batch by batch in externalId order: read
// returns up to fillBatch objects of kind after an externalId (in order), write stores the names
// of the listed objects (those with a name). It runs inside the migration's transaction, so a
// crash halfway leaves the schema at the version before, and the next open does it all again.
func fillNames(read func(kind Kind, after string) ([]namedRow, error), write func(kind Kind, ids, names []string) error) error {
	for _, kind := range []Kind{KindUser, KindGroup} {
		after := ""
		for {
			batch, err := read(kind, after)
			if err != nil {
				return fmt.Errorf("read %ss after %q: %w", kind, after, err)
			}
			if len(batch) == 0 {
				break
			}
			var ids, names []string
			for _, r := range batch {
				if n := nameLower(kind, r.data); n != "" {
					ids, names = append(ids, r.id), append(names, n)
				}
			}
			if len(ids) > 0 {
				if err := write(kind, ids, names); err != nil {
					return fmt.Errorf("name %d %ss after %q: %w", len(ids), kind, after, err)
				}
			}
			after = batch[len(batch)-1].id
		}
	}
	return nil
}

// sqliteFillNames is the Go half of SQLite migration 4 (see fillNames).
func sqliteFillNames(ctx context.Context, tx *sql.Tx) error {
	upd, err := tx.PrepareContext(ctx, "UPDATE objects SET name_lower = ? WHERE kind = ? AND external_id = ?")
	if err != nil {
		return err
	}
	defer upd.Close()
	return fillNames(func(kind Kind, after string) ([]namedRow, error) {
		rows, err := tx.QueryContext(ctx, "SELECT external_id, data FROM objects WHERE kind = ? AND external_id > ? ORDER BY external_id LIMIT ?",
			string(kind), after, fillBatch)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return appendRows(nil, rows, scanNamedRow)
	}, func(kind Kind, ids, names []string) error {
		for i, id := range ids {
			if _, err := upd.ExecContext(ctx, names[i], string(kind), id); err != nil {
				return fmt.Errorf("%q: %w", id, err)
			}
		}
		return nil
	})
}

// pgFillNames is the Go half of PostgreSQL migration 3 (see fillNames).
func pgFillNames(ctx context.Context, tx pgx.Tx) error {
	return fillNames(func(kind Kind, after string) ([]namedRow, error) {
		rows, err := tx.Query(ctx, "SELECT external_id, data FROM objects WHERE kind = $1 AND external_id > $2 ORDER BY external_id LIMIT $3",
			string(kind), after, fillBatch)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return appendRows(nil, rows, scanNamedRow)
	}, func(kind Kind, ids, names []string) error {
		_, err := tx.Exec(ctx, `UPDATE objects o SET name_lower = d.name
FROM unnest($2::text[], $3::text[]) AS d(external_id, name)
WHERE o.kind = $1 AND o.external_id = d.external_id`, string(kind), ids, names)
		return err
	})
}

func scanNamedRow(row rowScanner) (namedRow, error) {
	var r namedRow
	err := row.Scan(&r.id, &r.data)
	return r, err
}
