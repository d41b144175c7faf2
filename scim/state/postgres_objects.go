package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Bulk writes bind whole columns as arrays and unnest them: one statement per table whatever the
// batch size. Rows are sorted by key first, so that two transactions touching the same rows
// lock them in the same order.

// RecordPending records that creates of these objects are about to be sent, at now (see
// SQLite.RecordPending).
func (s *Postgres) RecordPending(ctx context.Context, kind Kind, externalIDs []string, now time.Time) error {
	if err := checkIDs(kind, externalIDs); err != nil {
		return fmt.Errorf("state: record %d pending %ss: %w", len(externalIDs), kind, err)
	}
	ids := sortedUnique(externalIDs)
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO pending (kind, external_id, created_at) SELECT $1, id, $3 FROM unnest($2::text[]) AS id
ON CONFLICT (kind, external_id) DO UPDATE SET created_at = excluded.created_at`, string(kind), ids, formatTime(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("state: record %d pending %ss: %w", len(externalIDs), kind, err)
	}
	return nil
}

// Pending returns the externalIds of kind with pending creates.
func (s *Postgres) Pending(ctx context.Context, kind Kind) (map[string]bool, error) {
	times, err := s.PendingTimes(ctx, kind)
	if err != nil {
		return nil, err
	}
	return pendingSet(times), nil
}

// PendingTimes returns the pending creates of kind with the time each was recorded.
func (s *Postgres) PendingTimes(ctx context.Context, kind Kind) (map[string]time.Time, error) {
	if err := kind.check(); err != nil {
		return nil, fmt.Errorf("state: list pending: %w", err)
	}
	rows, err := s.pool.Query(ctx, "SELECT external_id, created_at FROM pending WHERE kind = $1", string(kind))
	if err != nil {
		return nil, fmt.Errorf("state: list pending %ss: %w", kind, err)
	}
	defer rows.Close()
	return readPendingTimes(rows, kind)
}

// ClearPending forgets the pending creates of these objects.
func (s *Postgres) ClearPending(ctx context.Context, kind Kind, externalIDs []string) error {
	if err := checkIDs(kind, externalIDs); err != nil {
		return fmt.Errorf("state: clear %d pending %ss: %w", len(externalIDs), kind, err)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM pending WHERE kind = $1 AND external_id = ANY($2::text[])", string(kind), sortedUnique(externalIDs))
		return err
	})
	if err != nil {
		return fmt.Errorf("state: clear %d pending %ss: %w", len(externalIDs), kind, err)
	}
	return nil
}

// PutObjects records objects as owned and written, in one transaction (see SQLite.PutObjects).
// When one batch holds an object twice, the last one wins, as with SQLite.
func (s *Postgres) PutObjects(ctx context.Context, objs []Object) error {
	rows, err := prepareObjects(objs)
	if err != nil {
		return err
	}
	// Keep the last of duplicates: a stable sort, then the last of each run of equal keys.
	slices.SortStableFunc(rows, func(a, b preparedObject) int {
		return cmp.Or(cmp.Compare(a.o.Kind, b.o.Kind), cmp.Compare(a.o.ExternalID, b.o.ExternalID))
	})
	n := len(rows)
	kinds, ids, tids, data, hashes, ats, names := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n),
		make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	for i, r := range rows {
		if i+1 < n && rows[i+1].o.Kind == r.o.Kind && rows[i+1].o.ExternalID == r.o.ExternalID {
			continue
		}
		kinds, ids, tids = append(kinds, string(r.o.Kind)), append(ids, r.o.ExternalID), append(tids, r.o.TargetID)
		data, hashes, ats = append(data, r.data), append(hashes, r.o.Hash), append(ats, formatTime(r.o.UpdatedAt))
		names = append(names, r.name)
	}
	err = s.write(ctx, func(tx pgx.Tx) error {
		// One statement (one round trip): the upsert, and the pending creates it settles.
		_, err := tx.Exec(ctx, `WITH unpend AS (
	DELETE FROM pending p USING unnest($1::text[], $2::text[]) AS d(kind, external_id)
	WHERE p.kind = d.kind AND p.external_id = d.external_id
)
INSERT INTO objects (kind, external_id, target_id, data, hash, updated_at, name_lower, name_hash)
SELECT k, e, t, d, h, a, n, h FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS x(k, e, t, d, h, a, n)
ON CONFLICT (kind, external_id) DO UPDATE SET
	target_id = excluded.target_id, data = excluded.data, hash = excluded.hash, updated_at = excluded.updated_at,
	name_lower = excluded.name_lower, name_hash = excluded.name_hash`,
			kinds, ids, tids, data, hashes, ats, names)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: put %d objects: %w", len(objs), err)
	}
	return nil
}

// DeleteObjects forgets owned objects, their pending creates, and their membership rows.
func (s *Postgres) DeleteObjects(ctx context.Context, kind Kind, externalIDs []string) error {
	if err := checkIDs(kind, externalIDs); err != nil {
		return fmt.Errorf("state: delete %d %ss: %w", len(externalIDs), kind, err)
	}
	ids := sortedUnique(externalIDs)
	err := s.write(ctx, func(tx pgx.Tx) error {
		// Group memberships go by ON DELETE CASCADE.
		if _, err := tx.Exec(ctx, "DELETE FROM objects WHERE kind = $1 AND external_id = ANY($2::text[])", string(kind), ids); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM pending WHERE kind = $1 AND external_id = ANY($2::text[])", string(kind), ids); err != nil {
			return err
		}
		if kind == KindUser {
			_, err := tx.Exec(ctx, "DELETE FROM members WHERE user_external_id = ANY($1::text[])", ids)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: delete %d %ss: %w", len(externalIDs), kind, err)
	}
	return nil
}

// Objects returns every owned object of kind, sorted by ExternalID (byte order).
func (s *Postgres) Objects(ctx context.Context, kind Kind) ([]Object, error) {
	if err := kind.check(); err != nil {
		return nil, fmt.Errorf("state: list objects: %w", err)
	}
	rows, err := s.pool.Query(ctx,
		"SELECT "+objectColumns+" FROM objects WHERE kind = $1 ORDER BY external_id", string(kind))
	if err != nil {
		return nil, fmt.Errorf("state: list %ss: %w", kind, err)
	}
	defer rows.Close()
	return readObjects([]Object{}, rows, kind)
}

// The slice reads bind their ids as one text[] (= ANY), so the list may be of any length: the
// objects by their primary key, MembersOf by the members' primary key (group, user), GroupsOf
// by the index members_by_user.
const (
	pgObjectsByID = "SELECT " + objectColumns + " FROM objects WHERE kind = $1 AND external_id = ANY($2::text[]) ORDER BY external_id"
	pgMembersOf   = `SELECT group_external_id, user_external_id FROM members
WHERE group_external_id = ANY($1::text[]) ORDER BY group_external_id, user_external_id`
	pgGroupsOf = `SELECT group_external_id, user_external_id FROM members
WHERE user_external_id = ANY($1::text[]) ORDER BY group_external_id, user_external_id`
)

// ObjectsByID returns the owned objects of kind whose externalIds are listed, sorted by
// ExternalID (see SQLite.ObjectsByID).
func (s *Postgres) ObjectsByID(ctx context.Context, kind Kind, externalIDs []string) ([]Object, error) {
	if err := kind.check(); err != nil {
		return nil, fmt.Errorf("state: list objects by id: %w", err)
	}
	ids := lookupIDs(externalIDs)
	if len(ids) == 0 {
		return []Object{}, nil
	}
	rows, err := s.pool.Query(ctx, pgObjectsByID, string(kind), ids)
	if err != nil {
		return nil, fmt.Errorf("state: list %d %ss by id: %w", len(ids), kind, err)
	}
	defer rows.Close()
	return readObjects(make([]Object, 0, len(ids)), rows, kind)
}

// AddMembers records users as members of an owned group (see SQLite.AddMembers).
func (s *Postgres) AddMembers(ctx context.Context, groupExternalID string, userExternalIDs []string) error {
	ms := groupMemberships(groupExternalID, userExternalIDs)
	if err := s.addMemberships(ctx, ms, groupExternalID); err != nil {
		return fmt.Errorf("state: add %d members to group %q: %w", len(userExternalIDs), groupExternalID, err)
	}
	return nil
}

// AddMemberships records memberships of any owned groups in one transaction.
func (s *Postgres) AddMemberships(ctx context.Context, ms []Membership) error {
	if err := s.addMemberships(ctx, ms, ""); err != nil {
		return fmt.Errorf("state: add %d memberships: %w", len(ms), err)
	}
	return nil
}

func (s *Postgres) addMemberships(ctx context.Context, ms []Membership, group string) error {
	if group == "" && len(ms) == 0 {
		return nil
	}
	if err := checkMemberships(ms, group); err != nil {
		return err
	}
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b Membership) int { return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.User, b.User)) })
	ms = slices.Compact(ms)
	groups, users := make([]string, len(ms)), make([]string, len(ms))
	for i, m := range ms {
		groups[i], users[i] = m.Group, m.User
	}
	distinct := slices.Compact(slices.Clone(groups))
	if group != "" {
		distinct = []string{group}
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		// One statement (one round trip): the groups are checked, and the rows inserted only
		// when every group is owned.
		var missing string
		err := tx.QueryRow(ctx, `WITH missing AS (
	SELECT g FROM unnest($1::text[]) AS g
	WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.kind = 'group' AND o.external_id = g) LIMIT 1
), ins AS (
	INSERT INTO members (group_external_id, user_external_id)
	SELECT * FROM unnest($2::text[], $3::text[]) WHERE NOT EXISTS (SELECT 1 FROM missing)
	ON CONFLICT DO NOTHING
)
SELECT g FROM missing`, distinct, groups, users).Scan(&missing)
		switch {
		case err == nil:
			return fmt.Errorf("group %q: %w", missing, ErrNotOwned)
		case errors.Is(err, pgx.ErrNoRows):
			return nil
		case isPgForeignKey(err): // a group deleted since the check, by another writer
			return fmt.Errorf("%w: %w", ErrNotOwned, err)
		}
		return err
	})
}

// RemoveMembers forgets memberships of a group; absent ones are ignored.
func (s *Postgres) RemoveMembers(ctx context.Context, groupExternalID string, userExternalIDs []string) error {
	ms := groupMemberships(groupExternalID, userExternalIDs)
	err := checkMemberships(ms, groupExternalID)
	if err == nil {
		err = s.write(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "DELETE FROM members WHERE group_external_id = $1 AND user_external_id = ANY($2::text[])",
				groupExternalID, sortedUnique(userExternalIDs))
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("state: remove %d members from group %q: %w", len(userExternalIDs), groupExternalID, err)
	}
	return nil
}

// SetMembers replaces the recorded members of an owned group with exactly userExternalIDs.
func (s *Postgres) SetMembers(ctx context.Context, groupExternalID string, userExternalIDs []string) error {
	ms := groupMemberships(groupExternalID, userExternalIDs)
	err := checkMemberships(ms, groupExternalID)
	if err == nil {
		err = s.write(ctx, func(tx pgx.Tx) error {
			var one int
			err := tx.QueryRow(ctx, "SELECT 1 FROM objects WHERE kind = 'group' AND external_id = $1 FOR KEY SHARE", groupExternalID).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotOwned
			} else if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DELETE FROM members WHERE group_external_id = $1", groupExternalID); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO members (group_external_id, user_external_id)
SELECT $1, u FROM unnest($2::text[]) AS u ON CONFLICT DO NOTHING`, groupExternalID, sortedUnique(userExternalIDs))
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("state: set %d members of group %q: %w", len(userExternalIDs), groupExternalID, err)
	}
	return nil
}

// RemoveUserEverywhere forgets every membership of a user.
func (s *Postgres) RemoveUserEverywhere(ctx context.Context, userExternalID string) error {
	if userExternalID == "" {
		return fmt.Errorf("state: remove user from all groups: empty external id: %w", ErrInvalid)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM members WHERE user_external_id = $1", userExternalID)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: remove user %q from all groups: %w", userExternalID, err)
	}
	return nil
}

// Members returns the recorded members of every owned group that has any, each list sorted
// (byte order).
func (s *Postgres) Members(ctx context.Context) (map[string][]string, error) {
	rows, err := s.pool.Query(ctx,
		"SELECT group_external_id, user_external_id FROM members ORDER BY group_external_id, user_external_id")
	if err != nil {
		return nil, fmt.Errorf("state: list members: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	users := map[string]string{} // one string per user, shared by its memberships
	var cur string
	var list []string
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 2 {
			return nil, fmt.Errorf("state: list members: %d columns", len(raw))
		}
		if cur == "" || string(raw[0]) != cur {
			if cur != "" {
				out[cur] = list
			}
			cur, list = string(raw[0]), nil
		}
		us, ok := users[string(raw[1])]
		if !ok {
			us = string(raw[1])
			users[us] = us
		}
		list = append(list, us)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: list members: %w", err)
	}
	if cur != "" {
		out[cur] = list
	}
	return out, nil
}

// MembersOf returns the recorded members of the listed groups (see SQLite.MembersOf).
func (s *Postgres) MembersOf(ctx context.Context, groups []string) (map[string][]string, error) {
	return s.memberSlice(ctx, pgMembersOf, groups, "list members of %d groups")
}

// GroupsOf returns the recorded memberships of the listed users (see SQLite.GroupsOf).
func (s *Postgres) GroupsOf(ctx context.Context, users []string) (map[string][]string, error) {
	return s.memberSlice(ctx, pgGroupsOf, users, "list groups of %d users")
}

// memberSlice runs query, one of the slice reads of memberships, with ids as its text[].
func (s *Postgres) memberSlice(ctx context.Context, query string, ids []string, what string) (map[string][]string, error) {
	ids = lookupIDs(ids)
	what = fmt.Sprintf(what, len(ids))
	if len(ids) == 0 {
		return map[string][]string{}, nil
	}
	rows, err := s.pool.Query(ctx, query, ids)
	if err != nil {
		return nil, fmt.Errorf("state: %s: %w", what, err)
	}
	defer rows.Close()
	return readMemberLists(rows, what)
}

// sortedUnique returns ids sorted, without duplicates, in a new slice.
func sortedUnique(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// isPgForeignKey reports a foreign key violation.
func isPgForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
