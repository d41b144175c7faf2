package state

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ErrNotEmpty reports an Import into a store that already holds state.
var ErrNotEmpty = errors.New("the destination store is not empty")

// Dump is everything a store holds but its leader term, in a fixed order: what `state migrate`
// copies from one store to another, and compares afterwards.
type Dump struct {
	// Objects of every kind, sorted by Kind, then ExternalID.
	Objects []Object
	// Pending creates, sorted by Kind, then ExternalID.
	Pending []PendingCreate
	// Members sorted by Group, then User.
	Members []Membership
	Meta    map[string]string
	// Unowned sorted by Kind, then TargetID.
	Unowned []Unowned
	// Runs sorted by ID, oldest first.
	Runs []Run
}

// PendingCreate is one pending create; At is zero for an intent recorded without a time (schema
// version 1).
type PendingCreate struct {
	Kind       Kind
	ExternalID string
	At         time.Time
}

// Empty reports whether d holds nothing.
func (d *Dump) Empty() bool {
	return len(d.Objects) == 0 && len(d.Pending) == 0 && len(d.Members) == 0 && len(d.Meta) == 0 &&
		len(d.Unowned) == 0 && len(d.Runs) == 0
}

// Count is the number of rows d holds, for messages.
func (d *Dump) Count() int {
	return len(d.Objects) + len(d.Pending) + len(d.Members) + len(d.Meta) + len(d.Unowned) + len(d.Runs)
}

func (d *Dump) sort() {
	slices.SortFunc(d.Objects, func(a, b Object) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ExternalID, b.ExternalID))
	})
	slices.SortFunc(d.Pending, func(a, b PendingCreate) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ExternalID, b.ExternalID))
	})
	slices.SortFunc(d.Members, func(a, b Membership) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.User, b.User))
	})
	slices.SortFunc(d.Unowned, func(a, b Unowned) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.TargetID, b.TargetID))
	})
	slices.SortFunc(d.Runs, func(a, b Run) int { return cmp.Compare(a.ID, b.ID) })
}

// Diff compares two dumps table by table and describes each table that differs (its row counts
// and the first row that differs), or returns nil when they are equal. Times compare by instant.
func Diff(a, b *Dump) []string {
	var out []string
	table := func(name string, na, nb int, eq func(i int) bool, key func(i int) string) {
		for i := range min(na, nb) {
			if !eq(i) {
				out = append(out, fmt.Sprintf("%s: %d and %d rows, first difference at %s", name, na, nb, key(i)))
				return
			}
		}
		if na != nb {
			i := min(na, nb)
			k := "the end"
			if i < max(na, nb) {
				k = key(i)
			}
			out = append(out, fmt.Sprintf("%s: %d and %d rows, first difference at %s", name, na, nb, k))
		}
	}
	oKey := func(objs []Object) func(int) string {
		return func(i int) string { return fmt.Sprintf("%s %q", objs[i].Kind, objs[i].ExternalID) }
	}
	longer := func(x, y int, kx, ky func(int) string) func(int) string {
		return func(i int) string {
			if i < x {
				return kx(i)
			}
			return ky(i)
		}
	}
	table("objects", len(a.Objects), len(b.Objects), func(i int) bool {
		x, y := a.Objects[i], b.Objects[i]
		return x.Kind == y.Kind && x.ExternalID == y.ExternalID && x.TargetID == y.TargetID && bytes.Equal(x.Data, y.Data) &&
			x.Hash == y.Hash && x.UpdatedAt.Equal(y.UpdatedAt)
	}, longer(len(a.Objects), len(b.Objects), oKey(a.Objects), oKey(b.Objects)))
	pKey := func(p []PendingCreate) func(int) string {
		return func(i int) string { return fmt.Sprintf("%s %q", p[i].Kind, p[i].ExternalID) }
	}
	table("pending", len(a.Pending), len(b.Pending), func(i int) bool {
		x, y := a.Pending[i], b.Pending[i]
		return x.Kind == y.Kind && x.ExternalID == y.ExternalID && x.At.Equal(y.At)
	}, longer(len(a.Pending), len(b.Pending), pKey(a.Pending), pKey(b.Pending)))
	mKey := func(m []Membership) func(int) string {
		return func(i int) string { return fmt.Sprintf("group %q user %q", m[i].Group, m[i].User) }
	}
	table("members", len(a.Members), len(b.Members), func(i int) bool { return a.Members[i] == b.Members[i] },
		longer(len(a.Members), len(b.Members), mKey(a.Members), mKey(b.Members)))
	ka, kb := slices.Sorted(maps.Keys(a.Meta)), slices.Sorted(maps.Keys(b.Meta))
	kKey := func(k []string) func(int) string { return func(i int) string { return fmt.Sprintf("key %q", k[i]) } }
	table("meta", len(ka), len(kb), func(i int) bool { return ka[i] == kb[i] && a.Meta[ka[i]] == b.Meta[kb[i]] },
		longer(len(ka), len(kb), kKey(ka), kKey(kb)))
	uKey := func(u []Unowned) func(int) string {
		return func(i int) string { return fmt.Sprintf("%s %q", u[i].Kind, u[i].TargetID) }
	}
	table("unowned", len(a.Unowned), len(b.Unowned), func(i int) bool { return a.Unowned[i] == b.Unowned[i] },
		longer(len(a.Unowned), len(b.Unowned), uKey(a.Unowned), uKey(b.Unowned)))
	rKey := func(r []Run) func(int) string { return func(i int) string { return fmt.Sprintf("run %d", r[i].ID) } }
	table("runs", len(a.Runs), len(b.Runs), func(i int) bool { return runsEqual(a.Runs[i], b.Runs[i]) },
		longer(len(a.Runs), len(b.Runs), rKey(a.Runs), rKey(b.Runs)))
	return out
}

func runsEqual(x, y Run) bool {
	return x.ID == y.ID && x.Trigger == y.Trigger && x.DryRun == y.DryRun && x.Started.Equal(y.Started) &&
		x.Ended.Equal(y.Ended) && x.Result == y.Result && x.Counts == y.Counts && slices.Equal(x.Errors, y.Errors) && x.Plan == y.Plan
}

// Location is the state file's path.
func (s *SQLite) Location() string { return s.path }

// Export reads everything the store holds, in one read transaction.
func (s *SQLite) Export(ctx context.Context) (*Dump, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("state: export %s: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	d := &Dump{Meta: map[string]string{}}
	err = d.readTables(func(query string, add func(rowScanner) error) error {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rows.Close()
		return eachRow(rows, add)
	})
	if err != nil {
		return nil, fmt.Errorf("state: export %s: %w", s.path, err)
	}
	d.sort()
	return d, nil
}

// exportTables are the tables of a Dump, in the order Export reads them: the query that reads
// each (the same in both stores), and how one of its rows goes into the Dump.
var exportTables = []struct {
	query string
	add   func(d *Dump, row rowScanner) error
}{
	{"SELECT kind, external_id, target_id, data, hash, updated_at FROM objects", func(d *Dump, row rowScanner) error {
		var o Object
		var data []byte
		var at string
		if err := row.Scan(&o.Kind, &o.ExternalID, &o.TargetID, &data, &o.Hash, &at); err != nil {
			return err
		}
		o.Data = data
		var err error
		o.UpdatedAt, err = parseTime(at)
		d.Objects = append(d.Objects, o)
		return err
	}},
	{"SELECT kind, external_id, created_at FROM pending", func(d *Dump, row rowScanner) error {
		var p PendingCreate
		var at string
		if err := row.Scan(&p.Kind, &p.ExternalID, &at); err != nil {
			return err
		}
		var err error
		if at != "" {
			p.At, err = parseTime(at)
		}
		d.Pending = append(d.Pending, p)
		return err
	}},
	{"SELECT group_external_id, user_external_id FROM members", func(d *Dump, row rowScanner) error {
		var m Membership
		err := row.Scan(&m.Group, &m.User)
		d.Members = append(d.Members, m)
		return err
	}},
	{"SELECT key, value FROM meta", func(d *Dump, row rowScanner) error {
		var k, v string
		err := row.Scan(&k, &v)
		d.Meta[k] = v
		return err
	}},
	{"SELECT kind, target_id, external_id, name FROM unowned", func(d *Dump, row rowScanner) error {
		var u Unowned
		err := row.Scan(&u.Kind, &u.TargetID, &u.ExternalID, &u.Name)
		d.Unowned = append(d.Unowned, u)
		return err
	}},
	{"SELECT " + runColumns + " FROM runs", func(d *Dump, row rowScanner) error {
		r, err := scanRun(row)
		d.Runs = append(d.Runs, r)
		return err
	}},
}

// readTables fills d from every table of exportTables; read runs a query in the store's read
// transaction and hands each row to add.
func (d *Dump) readTables(read func(query string, add func(rowScanner) error) error) error {
	for _, t := range exportTables {
		if err := read(t.query, func(row rowScanner) error { return t.add(d, row) }); err != nil {
			return err
		}
	}
	return nil
}

// eachRow hands every row of rows to each; it stops at the first error.
func eachRow(rows rowIter, each func(rowScanner) error) error {
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Import writes d into the store in one transaction (see Store.Import). It is fenced like every
// write.
func (s *SQLite) Import(ctx context.Context, d *Dump, replace bool) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		tables := []string{"members", "objects", "pending", "unowned", "meta", "runs"}
		if !replace {
			for _, t := range tables {
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					return fmt.Errorf("%w: %s holds %d rows", ErrNotEmpty, t, n)
				}
			}
		}
		for _, t := range tables {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
				return fmt.Errorf("clear %s: %w", t, err)
			}
		}
		ins := func(query string, n int, args func(i int) []any) error {
			st, err := tx.PrepareContext(ctx, query)
			if err != nil {
				return err
			}
			defer st.Close()
			for i := range n {
				if _, err := st.ExecContext(ctx, args(i)...); err != nil {
					return err
				}
			}
			return nil
		}
		// name_lower is derived from the data, so a dump does not carry it: it is computed here.
		err := ins("INSERT INTO objects (kind, external_id, target_id, data, hash, updated_at, name_lower, name_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5)", len(d.Objects), func(i int) []any {
			o := d.Objects[i]
			return []any{string(o.Kind), o.ExternalID, o.TargetID, string(o.Data), o.Hash, formatTime(o.UpdatedAt), nameLower(o.Kind, o.Data)}
		})
		if err == nil {
			err = ins("INSERT INTO pending (kind, external_id, created_at) VALUES (?, ?, ?)", len(d.Pending), func(i int) []any {
				p := d.Pending[i]
				return []any{string(p.Kind), p.ExternalID, formatOptionalTime(p.At)}
			})
		}
		if err == nil {
			err = ins("INSERT INTO members (group_external_id, user_external_id) VALUES (?, ?)", len(d.Members), func(i int) []any {
				return []any{d.Members[i].Group, d.Members[i].User}
			})
		}
		if err == nil {
			keys := slices.Sorted(maps.Keys(d.Meta))
			err = ins("INSERT INTO meta (key, value) VALUES (?, ?)", len(keys), func(i int) []any { return []any{keys[i], d.Meta[keys[i]]} })
		}
		if err == nil {
			err = ins("INSERT INTO unowned (kind, target_id, external_id, name) VALUES (?, ?, ?, ?)", len(d.Unowned), func(i int) []any {
				u := d.Unowned[i]
				return []any{string(u.Kind), u.TargetID, u.ExternalID, u.Name}
			})
		}
		if err == nil {
			err = ins("INSERT INTO runs ("+runColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", len(d.Runs), func(i int) []any {
				return runArgs(d.Runs[i])
			})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("state: import %d rows into %s: %w", d.Count(), s.path, err)
	}
	return nil
}

// formatOptionalTime stores the zero time as "", as schema version 1 left it.
func formatOptionalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

// runArgs are the values of runColumns for r.
func runArgs(r Run) []any {
	errs := r.Errors
	if errs == nil {
		errs = []string{}
	}
	c, _ := json.Marshal(r.Counts)
	e, _ := json.Marshal(errs)
	var ended any
	if !r.Ended.IsZero() {
		ended = formatTime(r.Ended)
	}
	return []any{r.ID, r.Trigger, r.DryRun, formatTime(r.Started), ended, r.Result, string(c), string(e), r.Plan}
}
