package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scimbridge/scimbridge/scim"
)

// Kind is the kind of a target object: KindUser, KindGroup, or a kind another package declares
// (permission sets and account assignments, say). The store keeps every kind alike; a kind is
// 1 to 64 letters, digits, '_', '-' or '.'. Memberships belong to KindGroup objects only.
type Kind string

// The kinds of target objects that the SCIM sync records.
const (
	KindUser  Kind = "user"
	KindGroup Kind = "group"
)

func (k Kind) check() error {
	ok := len(k) > 0 && len(k) <= 64
	for _, c := range []byte(k) {
		if !ok {
			break
		}
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
	}
	if !ok {
		return fmt.Errorf("kind %q: %w", string(k), ErrInvalid)
	}
	return nil
}

// Object is a target object that scimbridge owns: its kind, its stable source id (the SCIM
// externalId), its id in the target, the JSON of what scimbridge last wrote (a scim.User, or a
// scim.Group without members), the fingerprint of that JSON, and when it was written.
type Object struct {
	Kind       Kind
	ExternalID string
	TargetID   string
	Data       json.RawMessage
	Hash       string
	UpdatedAt  time.Time
}

// Fingerprint is the hash PutObjects stores for data when Object.Hash is empty: the hex SHA-256
// of the JSON in compact form (json.Marshal output is already compact).
func Fingerprint(data []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, data) == nil {
		data = buf.Bytes()
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// NewUserObject returns the Object that records u as written to the target under targetID.
func NewUserObject(targetID string, u scim.User, now time.Time) (Object, error) {
	data, err := json.Marshal(u)
	if err != nil {
		return Object{}, fmt.Errorf("state: encode user %q: %w", u.ExternalID, err)
	}
	return Object{Kind: KindUser, ExternalID: u.ExternalID, TargetID: targetID, Data: data, Hash: Fingerprint(data), UpdatedAt: now}, nil
}

// NewGroupObject returns the Object that records g, without its members (they are kept apart,
// see AddMembers), as written to the target under targetID.
func NewGroupObject(targetID string, g scim.Group, now time.Time) (Object, error) {
	g.Members = nil
	data, err := json.Marshal(g)
	if err != nil {
		return Object{}, fmt.Errorf("state: encode group %q: %w", g.ExternalID, err)
	}
	return Object{Kind: KindGroup, ExternalID: g.ExternalID, TargetID: targetID, Data: data, Hash: Fingerprint(data), UpdatedAt: now}, nil
}

// User decodes the Data of a user object.
func (o Object) User() (scim.User, error) {
	var u scim.User
	if o.Kind != KindUser {
		return u, fmt.Errorf("state: decode %s %q as a user: %w", o.Kind, o.ExternalID, ErrInvalid)
	}
	if err := json.Unmarshal(o.Data, &u); err != nil {
		return u, fmt.Errorf("state: decode user %q: %w", o.ExternalID, err)
	}
	return u, nil
}

// Group decodes the Data of a group object; its Members are empty.
func (o Object) Group() (scim.Group, error) {
	var g scim.Group
	if o.Kind != KindGroup {
		return g, fmt.Errorf("state: decode %s %q as a group: %w", o.Kind, o.ExternalID, ErrInvalid)
	}
	if err := json.Unmarshal(o.Data, &g); err != nil {
		return g, fmt.Errorf("state: decode group %q: %w", o.ExternalID, err)
	}
	return g, nil
}

// RecordPending records, durably and in one transaction, that creates of these objects are
// about to be sent, and when (now, the caller's clock). Recording an id again moves its time to
// now: a create is only ever retried after a full read found no object for it. After a crash, a
// target object whose externalId is pending, and that was made no earlier than the intent (see
// package reconcile for the margin), is ours.
func (s *SQLite) RecordPending(ctx context.Context, kind Kind, externalIDs []string, now time.Time) error {
	if err := checkIDs(kind, externalIDs); err != nil {
		return fmt.Errorf("state: record %d pending %ss: %w", len(externalIDs), kind, err)
	}
	at := formatTime(now)
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, "INSERT INTO pending (kind, external_id, created_at) VALUES (?, ?, ?) ON CONFLICT (kind, external_id) DO UPDATE SET created_at = excluded.created_at")
		if err != nil {
			return err
		}
		defer st.Close()
		for _, id := range externalIDs {
			if _, err := st.ExecContext(ctx, string(kind), id, at); err != nil {
				return fmt.Errorf("%q: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: record %d pending %ss: %w", len(externalIDs), kind, err)
	}
	return nil
}

// Pending returns the externalIds of kind whose creates were recorded as pending and not yet
// recorded as done (PutObjects) or cleared.
func (s *SQLite) Pending(ctx context.Context, kind Kind) (map[string]bool, error) {
	times, err := s.PendingTimes(ctx, kind)
	if err != nil {
		return nil, err
	}
	return pendingSet(times), nil
}

// PendingTimes returns the pending creates of kind with the time each was recorded; the time is
// zero for intents recorded by a build that did not keep it (schema version 1).
func (s *SQLite) PendingTimes(ctx context.Context, kind Kind) (map[string]time.Time, error) {
	if err := kind.check(); err != nil {
		return nil, fmt.Errorf("state: list pending: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, "SELECT external_id, created_at FROM pending WHERE kind = ?", string(kind))
	if err != nil {
		return nil, fmt.Errorf("state: list pending %ss: %w", kind, err)
	}
	defer rows.Close()
	return readPendingTimes(rows, kind)
}

// ClearPending forgets the pending creates of these objects (for example after a create failed
// for good, or after the object was found not to exist).
func (s *SQLite) ClearPending(ctx context.Context, kind Kind, externalIDs []string) error {
	if err := checkIDs(kind, externalIDs); err != nil {
		return fmt.Errorf("state: clear %d pending %ss: %w", len(externalIDs), kind, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		return execEach(ctx, tx, "DELETE FROM pending WHERE kind = ? AND external_id = ?", kind, externalIDs)
	})
	if err != nil {
		return fmt.Errorf("state: clear %d pending %ss: %w", len(externalIDs), kind, err)
	}
	return nil
}

// PutObjects records objects as owned and written, in one transaction: an upsert by (Kind,
// ExternalID) that also clears their pending creates. Data must be JSON (it is stored in compact
// form); an empty Hash is filled with Fingerprint(Data). Updating a group keeps its memberships.
func (s *SQLite) PutObjects(ctx context.Context, objs []Object) error {
	rows, err := prepareObjects(objs)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		put, err := tx.PrepareContext(ctx, `INSERT INTO objects (kind, external_id, target_id, data, hash, updated_at, name_lower, name_hash)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5)
ON CONFLICT (kind, external_id) DO UPDATE SET
	target_id = excluded.target_id, data = excluded.data, hash = excluded.hash, updated_at = excluded.updated_at,
	name_lower = excluded.name_lower, name_hash = excluded.name_hash`)
		if err != nil {
			return err
		}
		defer put.Close()
		unpend, err := tx.PrepareContext(ctx, "DELETE FROM pending WHERE kind = ? AND external_id = ?")
		if err != nil {
			return err
		}
		defer unpend.Close()
		for _, r := range rows {
			if _, err := put.ExecContext(ctx, string(r.o.Kind), r.o.ExternalID, r.o.TargetID, r.data, r.o.Hash, formatTime(r.o.UpdatedAt), r.name); err != nil {
				return fmt.Errorf("%s %q: %w", r.o.Kind, r.o.ExternalID, err)
			}
			if _, err := unpend.ExecContext(ctx, string(r.o.Kind), r.o.ExternalID); err != nil {
				return fmt.Errorf("%s %q: clear pending: %w", r.o.Kind, r.o.ExternalID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: put %d objects: %w", len(objs), err)
	}
	return nil
}

// preparedObject is an Object checked for PutObjects, its data in compact form, and its name
// lower-cased (the name_lower column, see nameLower).
type preparedObject struct {
	o    Object
	data string
	name string
}

// prepareObjects checks objs for PutObjects, compacts their data, fills in missing hashes and
// names them.
func prepareObjects(objs []Object) ([]preparedObject, error) {
	rows := make([]preparedObject, len(objs))
	var buf bytes.Buffer
	for i, o := range objs {
		if err := o.Kind.check(); err != nil {
			return nil, fmt.Errorf("state: put %d objects: object %d: %w", len(objs), i, err)
		}
		if o.ExternalID == "" || o.TargetID == "" {
			return nil, fmt.Errorf("state: put %d objects: %s %q with target id %q: empty id: %w",
				len(objs), o.Kind, o.ExternalID, o.TargetID, ErrInvalid)
		}
		if err := errors.Join(checkText("external id", o.ExternalID), checkText("target id", o.TargetID), checkText("hash", o.Hash)); err != nil {
			return nil, fmt.Errorf("state: put %d objects: %s: %w", len(objs), o.Kind, err)
		}
		buf.Reset()
		if err := json.Compact(&buf, o.Data); err != nil {
			return nil, fmt.Errorf("state: put %d objects: %s %q: data is not JSON: %w: %w", len(objs), o.Kind, o.ExternalID, ErrInvalid, err)
		}
		if o.Hash == "" {
			sum := sha256.Sum256(buf.Bytes())
			o.Hash = hex.EncodeToString(sum[:])
		}
		rows[i] = preparedObject{o: o, data: buf.String(), name: nameLower(o.Kind, buf.Bytes())}
	}
	return rows, nil
}

// DeleteObjects forgets owned objects, and any pending creates of them. A group's membership
// rows go with it; a user's membership rows go too, as the target drops a deleted user from
// every group.
func (s *SQLite) DeleteObjects(ctx context.Context, kind Kind, externalIDs []string) error {
	if err := checkIDs(kind, externalIDs); err != nil {
		return fmt.Errorf("state: delete %d %ss: %w", len(externalIDs), kind, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Group memberships go by ON DELETE CASCADE.
		if err := execEach(ctx, tx, "DELETE FROM objects WHERE kind = ? AND external_id = ?", kind, externalIDs); err != nil {
			return err
		}
		if err := execEach(ctx, tx, "DELETE FROM pending WHERE kind = ? AND external_id = ?", kind, externalIDs); err != nil {
			return err
		}
		if kind == KindUser {
			return execEach(ctx, tx, "DELETE FROM members WHERE user_external_id = ?", "", externalIDs)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: delete %d %ss: %w", len(externalIDs), kind, err)
	}
	return nil
}

// Objects returns every owned object of kind, sorted by ExternalID (byte order).
func (s *SQLite) Objects(ctx context.Context, kind Kind) ([]Object, error) {
	if err := kind.check(); err != nil {
		return nil, fmt.Errorf("state: list objects: %w", err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM objects WHERE kind = ?", string(kind)).Scan(&n); err != nil {
		return nil, fmt.Errorf("state: count %ss: %w", kind, err)
	}
	rows, err := s.r.QueryContext(ctx,
		"SELECT "+objectColumns+" FROM objects WHERE kind = ? ORDER BY external_id", string(kind))
	if err != nil {
		return nil, fmt.Errorf("state: list %ss: %w", kind, err)
	}
	defer rows.Close()
	return readObjects(make([]Object, 0, n), rows, kind)
}

// sqliteObjectsByID reads the objects of a kind (?1) whose externalIds are in a JSON array of
// strings (?2): one lookup of the primary key per id, whatever the number of ids, since the
// array is one parameter.
const sqliteObjectsByID = "SELECT " + objectColumns + " FROM objects WHERE kind = ? AND external_id IN (SELECT value FROM json_each(?)) ORDER BY external_id"

// ObjectsByID returns the owned objects of kind whose externalIds are listed (those that exist;
// unknown ids, duplicates and ids no store can hold are not an error), sorted by ExternalID (byte
// order): Objects restricted to ids, for a run that plans a few objects. The list may be of any
// length: it is bound as one JSON array.
func (s *SQLite) ObjectsByID(ctx context.Context, kind Kind, externalIDs []string) ([]Object, error) {
	if err := kind.check(); err != nil {
		return nil, fmt.Errorf("state: list objects by id: %w", err)
	}
	ids := lookupIDs(externalIDs)
	if len(ids) == 0 {
		return []Object{}, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("state: list %d %ss by id: %w", len(ids), kind, err)
	}
	rows, err := s.r.QueryContext(ctx, sqliteObjectsByID, string(kind), string(list))
	if err != nil {
		return nil, fmt.Errorf("state: list %d %ss by id: %w", len(ids), kind, err)
	}
	defer rows.Close()
	return readObjects(make([]Object, 0, len(ids)), rows, kind)
}

// checkIDs rejects an unknown kind or an empty id.
func checkIDs(kind Kind, ids []string) error {
	if err := kind.check(); err != nil {
		return err
	}
	for _, id := range ids {
		if id == "" {
			return fmt.Errorf("empty external id: %w", ErrInvalid)
		}
		if err := checkText("external id", id); err != nil {
			return err
		}
	}
	return nil
}

// checkText rejects what a text column of PostgreSQL cannot hold (NUL bytes, invalid UTF-8), in
// both stores alike; the source's validation has already refused such ids.
func checkText(what, s string) error {
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fmt.Errorf("%s %q: not valid UTF-8 text: %w", what, s, ErrInvalid)
	}
	return nil
}

// execEach runs query once per id through one prepared statement; when kind is not empty it is
// bound before the id.
func execEach(ctx context.Context, tx *sql.Tx, query string, kind Kind, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, id := range ids {
		if kind != "" {
			_, err = st.ExecContext(ctx, string(kind), id)
		} else {
			_, err = st.ExecContext(ctx, id)
		}
		if err != nil {
			return fmt.Errorf("%q: %w", id, err)
		}
	}
	return nil
}
