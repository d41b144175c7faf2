package state

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// What both stores share once the SQL has run: decoding rows into the exported types, and
// checking arguments. The SQL itself, which differs, stays with each store.

// rowScanner is one row of either store: *sql.Row, *sql.Rows, pgx.Row or pgx.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// rowIter is a result set of either store: *sql.Rows or pgx.Rows. The caller closes it.
type rowIter interface {
	rowScanner
	Next() bool
	Err() error
}

// appendRows appends each row of rows, decoded by scan, to out; it stops at the first error.
func appendRows[T any](out []T, rows rowIter, scan func(rowScanner) (T, error)) ([]T, error) {
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// isNoRows reports a single-row query that found none, in either store.
func isNoRows(err error) bool {
	return errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows)
}

// readRun decodes run id from row, mapping no row to ErrRunNotFound.
func readRun(row rowScanner, id int64) (Run, error) {
	r, err := scanRun(row)
	if isNoRows(err) {
		err = ErrRunNotFound
	}
	if err != nil {
		return Run{}, fmt.Errorf("state: read run %d: %w", id, err)
	}
	return r, nil
}

// readLastSuccess decodes the answer of a LastSuccess query: scan reads its ended_at.
func readLastSuccess(scan func(dest ...any) error) (time.Time, bool, error) {
	var ended string
	err := scan(&ended)
	switch {
	case isNoRows(err):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("state: read last success: %w", err)
	}
	t, err := parseTime(ended)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("state: read last success: %w", err)
	}
	return t, true, nil
}

// statsQuery counts what Stats reports, in the order scanStats reads it; both stores run it.
const statsQuery = `SELECT
	(SELECT count(*) FROM objects WHERE kind = 'user'),
	(SELECT count(*) FROM objects WHERE kind = 'group'),
	(SELECT count(*) FROM members),
	(SELECT count(*) FROM pending WHERE kind = 'user'),
	(SELECT count(*) FROM pending WHERE kind = 'group')`

func scanStats(row rowScanner) (Stats, error) {
	var st Stats
	if err := row.Scan(&st.Users, &st.Groups, &st.Memberships, &st.PendingUsers, &st.PendingGroups); err != nil {
		return Stats{}, fmt.Errorf("state: count contents: %w", err)
	}
	return st, nil
}

// objectColumns are the columns scanObject reads, of the objects of one kind.
const objectColumns = "external_id, target_id, data, hash, updated_at"

// scanObject decodes one row of objectColumns into an Object of kind.
func scanObject(row rowScanner, kind Kind) (Object, error) {
	o := Object{Kind: kind}
	var data []byte
	var updated string
	if err := row.Scan(&o.ExternalID, &o.TargetID, &data, &o.Hash, &updated); err != nil {
		return Object{}, err
	}
	o.Data = data
	var err error
	if o.UpdatedAt, err = parseTime(updated); err != nil {
		return Object{}, fmt.Errorf("%s %q: %w", kind, o.ExternalID, err)
	}
	return o, nil
}

// readObjects appends the rows of objectColumns to out, as objects of kind.
func readObjects(out []Object, rows rowIter, kind Kind) ([]Object, error) {
	out, err := appendRows(out, rows, func(row rowScanner) (Object, error) { return scanObject(row, kind) })
	if err != nil {
		return nil, fmt.Errorf("state: list %ss: %w", kind, err)
	}
	return out, nil
}

// lookupIDs returns the externalIds a lookup (ObjectsByID, MembersOf, GroupsOf) can find,
// sorted and without duplicates, in a new slice. An id that no store can hold (empty, not valid
// UTF-8, or holding a NUL byte: PutObjects and AddMembers refuse it) is unknown, so it is left
// out rather than sent, where PostgreSQL would refuse its bytes and a JSON array would change
// them.
func lookupIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && checkText("external id", id) == nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// readMemberLists decodes rows of (group_external_id, user_external_id) into each group's
// users, sorted (byte order), for MembersOf and GroupsOf; a group without a row is absent. what
// names the read in errors.
func readMemberLists(rows rowIter, what string) (map[string][]string, error) {
	out := map[string][]string{}
	users := map[string]string{} // one string per user, shared by its memberships
	var g, u string
	for rows.Next() {
		if err := rows.Scan(&g, &u); err != nil {
			return nil, fmt.Errorf("state: %s: %w", what, err)
		}
		if us, ok := users[u]; ok {
			u = us
		} else {
			users[u] = u
		}
		out[g] = append(out[g], u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: %s: %w", what, err)
	}
	for _, l := range out {
		// The queries already give this order; this guards it against a collation surprise.
		if !slices.IsSorted(l) {
			slices.Sort(l)
		}
	}
	return out, nil
}

// readPendingTimes decodes rows of (external_id, created_at) of kind; an empty created_at (an
// intent recorded by schema version 1) is the zero time.
func readPendingTimes(rows rowIter, kind Kind) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for rows.Next() {
		var id, at string
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("state: list pending %ss: %w", kind, err)
		}
		var t time.Time
		if at != "" {
			var err error
			if t, err = parseTime(at); err != nil {
				return nil, fmt.Errorf("state: pending %s %q: %w", kind, id, err)
			}
		}
		out[id] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: list pending %ss: %w", kind, err)
	}
	return out, nil
}

// pendingSet is the set of externalIds of times, for Pending.
func pendingSet(times map[string]time.Time) map[string]bool {
	out := make(map[string]bool, len(times))
	for id := range times {
		out[id] = true
	}
	return out
}

// unownedColumns are the columns scanUnowned reads.
const unownedColumns = "kind, target_id, external_id, name"

func scanUnowned(row rowScanner) (Unowned, error) {
	var o Unowned
	var kind string
	if err := row.Scan(&kind, &o.TargetID, &o.ExternalID, &o.Name); err != nil {
		return Unowned{}, err
	}
	o.Kind = Kind(kind)
	return o, nil
}

// checkUnowned checks every object of a batch about to be recorded as unowned.
func checkUnowned(objs []Unowned) error {
	for _, o := range objs {
		if err := o.check(); err != nil {
			return err
		}
	}
	return nil
}

// groupMemberships names users as memberships of group.
func groupMemberships(group string, users []string) []Membership {
	ms := make([]Membership, len(users))
	for i, u := range users {
		ms[i] = Membership{Group: group, User: u}
	}
	return ms
}
