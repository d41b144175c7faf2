package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Membership is one membership of an owned group, both named by externalId.
type Membership struct {
	Group, User string
}

// AddMembers records users as members of an owned group, in one transaction; members already
// recorded are left as they are. The group must be owned (PutObjects first), else the error
// wraps ErrNotOwned and nothing is written.
func (s *SQLite) AddMembers(ctx context.Context, groupExternalID string, userExternalIDs []string) error {
	ms := groupMemberships(groupExternalID, userExternalIDs)
	if err := s.addMemberships(ctx, ms, groupExternalID); err != nil {
		return fmt.Errorf("state: add %d members to group %q: %w", len(userExternalIDs), groupExternalID, err)
	}
	return nil
}

// AddMemberships records memberships of any owned groups in one transaction through one
// prepared statement: the bulk form of AddMembers, for an initial import or a full reconcile.
func (s *SQLite) AddMemberships(ctx context.Context, ms []Membership) error {
	if err := s.addMemberships(ctx, ms, ""); err != nil {
		return fmt.Errorf("state: add %d memberships: %w", len(ms), err)
	}
	return nil
}

func (s *SQLite) addMemberships(ctx context.Context, ms []Membership, group string) error {
	if group == "" && len(ms) == 0 {
		return nil
	}
	if err := checkMemberships(ms, group); err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if group != "" {
			if err := checkOwned(ctx, tx, group); err != nil {
				return err
			}
		}
		st, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO members (group_external_id, user_external_id) VALUES (?, ?)")
		if err != nil {
			return err
		}
		defer st.Close()
		for _, m := range ms {
			if _, err := st.ExecContext(ctx, m.Group, m.User); err != nil {
				if isForeignKey(err) {
					return fmt.Errorf("group %q: %w", m.Group, ErrNotOwned)
				}
				return fmt.Errorf("group %q user %q: %w", m.Group, m.User, err)
			}
		}
		return nil
	})
}

// RemoveMembers forgets memberships of a group, in one transaction; absent ones are ignored.
func (s *SQLite) RemoveMembers(ctx context.Context, groupExternalID string, userExternalIDs []string) error {
	ms := groupMemberships(groupExternalID, userExternalIDs)
	err := checkMemberships(ms, groupExternalID)
	if err == nil {
		err = s.write(ctx, func(tx *sql.Tx) error {
			st, err := tx.PrepareContext(ctx, "DELETE FROM members WHERE group_external_id = ? AND user_external_id = ?")
			if err != nil {
				return err
			}
			defer st.Close()
			for _, u := range userExternalIDs {
				if _, err := st.ExecContext(ctx, groupExternalID, u); err != nil {
					return fmt.Errorf("user %q: %w", u, err)
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("state: remove %d members from group %q: %w", len(userExternalIDs), groupExternalID, err)
	}
	return nil
}

// SetMembers replaces the recorded members of an owned group with exactly userExternalIDs,
// in one transaction (for a full reconcile that read the group's real members).
func (s *SQLite) SetMembers(ctx context.Context, groupExternalID string, userExternalIDs []string) error {
	ms := groupMemberships(groupExternalID, userExternalIDs)
	err := checkMemberships(ms, groupExternalID)
	if err == nil {
		err = s.write(ctx, func(tx *sql.Tx) error {
			if err := checkOwned(ctx, tx, groupExternalID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM members WHERE group_external_id = ?", groupExternalID); err != nil {
				return err
			}
			st, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO members (group_external_id, user_external_id) VALUES (?, ?)")
			if err != nil {
				return err
			}
			defer st.Close()
			for _, u := range userExternalIDs {
				if _, err := st.ExecContext(ctx, groupExternalID, u); err != nil {
					return fmt.Errorf("user %q: %w", u, err)
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("state: set %d members of group %q: %w", len(userExternalIDs), groupExternalID, err)
	}
	return nil
}

// RemoveUserEverywhere forgets every membership of a user.
func (s *SQLite) RemoveUserEverywhere(ctx context.Context, userExternalID string) error {
	if userExternalID == "" {
		return fmt.Errorf("state: remove user from all groups: empty external id: %w", ErrInvalid)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM members WHERE user_external_id = ?", userExternalID)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: remove user %q from all groups: %w", userExternalID, err)
	}
	return nil
}

// Members returns the recorded members of every owned group that has any: group externalId to
// its members' externalIds, sorted (byte order). Groups without members are absent.
func (s *SQLite) Members(ctx context.Context) (map[string][]string, error) {
	rows, err := s.r.QueryContext(ctx,
		"SELECT group_external_id, user_external_id FROM members ORDER BY group_external_id, user_external_id")
	if err != nil {
		return nil, fmt.Errorf("state: list members: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	// A user is a member of many groups: share one string per user instead of one per row.
	users := map[string]string{}
	var g, u sql.RawBytes
	var cur string
	var list []string
	for rows.Next() {
		if err := rows.Scan(&g, &u); err != nil {
			return nil, fmt.Errorf("state: list members: %w", err)
		}
		if cur == "" || string(g) != cur {
			if cur != "" {
				out[cur] = list
			}
			cur, list = string(g), nil
		}
		us, ok := users[string(u)]
		if !ok {
			us = string(u)
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
	for _, l := range out {
		// The index already gives this order; this guards it against a collation surprise.
		if !slices.IsSorted(l) {
			slices.Sort(l)
		}
	}
	return out, nil
}

// The slice reads of memberships: the ids are bound as one JSON array, so the list may be of any
// length; MembersOf looks up the primary key (group, user) by group, GroupsOf the index
// members_by_user, which holds the group too.
const (
	sqliteMembersOf = `SELECT group_external_id, user_external_id FROM members
WHERE group_external_id IN (SELECT value FROM json_each(?)) ORDER BY group_external_id, user_external_id`
	sqliteGroupsOf = `SELECT group_external_id, user_external_id FROM members
WHERE user_external_id IN (SELECT value FROM json_each(?)) ORDER BY group_external_id, user_external_id`
)

// MembersOf returns the recorded members of the listed groups: group externalId to its members'
// externalIds, sorted like Members. A group with no recorded member (or not owned) is absent;
// unknown ids, duplicates and ids no store can hold are not an error.
func (s *SQLite) MembersOf(ctx context.Context, groups []string) (map[string][]string, error) {
	return s.memberSlice(ctx, sqliteMembersOf, groups, "list members of %d groups")
}

// GroupsOf returns the recorded memberships of the listed users: group externalId to the listed
// users that are members of it, sorted (byte order). Groups holding none of them are absent;
// unknown ids, duplicates and ids no store can hold are not an error.
func (s *SQLite) GroupsOf(ctx context.Context, users []string) (map[string][]string, error) {
	return s.memberSlice(ctx, sqliteGroupsOf, users, "list groups of %d users")
}

// memberSlice runs query, one of the slice reads of memberships, with ids as its JSON array.
func (s *SQLite) memberSlice(ctx context.Context, query string, ids []string, what string) (map[string][]string, error) {
	ids = lookupIDs(ids)
	what = fmt.Sprintf(what, len(ids))
	if len(ids) == 0 {
		return map[string][]string{}, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("state: %s: %w", what, err)
	}
	rows, err := s.r.QueryContext(ctx, query, string(list))
	if err != nil {
		return nil, fmt.Errorf("state: %s: %w", what, err)
	}
	defer rows.Close()
	return readMemberLists(rows, what)
}

func checkMemberships(ms []Membership, group string) error {
	if group == "" && len(ms) > 0 {
		group = ms[0].Group
	}
	for _, m := range ms {
		if m.Group == "" || m.User == "" {
			return fmt.Errorf("membership of %q in %q: empty external id: %w", m.User, m.Group, ErrInvalid)
		}
		if err := errors.Join(checkText("group", m.Group), checkText("user", m.User)); err != nil {
			return err
		}
	}
	if group == "" {
		return fmt.Errorf("empty group external id: %w", ErrInvalid)
	}
	return nil
}

func checkOwned(ctx context.Context, tx *sql.Tx, group string) error {
	var one int
	err := tx.QueryRowContext(ctx, "SELECT 1 FROM objects WHERE kind = 'group' AND external_id = ?", group).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotOwned
	}
	return err
}

// isForeignKey reports a foreign key violation (SQLITE_CONSTRAINT_FOREIGNKEY).
func isForeignKey(err error) bool {
	var e interface{ Code() int }
	return errors.As(err, &e) && e.Code() == 787
}
