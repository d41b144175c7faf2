package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Unowned is a target object that scimbridge does not own, as the last full read of the target
// saw it: enough to report a clash with it (its name and externalId) and to know, on a run that
// trusts the state store, that it is there. ExternalID is empty for objects that carry none.
type Unowned struct {
	Kind       Kind
	TargetID   string
	ExternalID string
	// Name is a user's userName or a group's displayName.
	Name string
}

// ReplaceUnowned records objs as the whole set of unowned objects the target holds, in one
// transaction: it is called after each complete full read, so that what an earlier read saw and
// this one did not is forgotten.
func (s *SQLite) ReplaceUnowned(ctx context.Context, objs []Unowned) error {
	if err := checkUnowned(objs); err != nil {
		return fmt.Errorf("state: record %d unowned objects: %w", len(objs), err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM unowned"); err != nil {
			return err
		}
		return insertUnowned(ctx, tx, objs)
	})
	if err != nil {
		return fmt.Errorf("state: record %d unowned objects: %w", len(objs), err)
	}
	return nil
}

// AddUnowned records objs as unowned objects of the target, beside those already recorded (for
// example an object a create ran into that the last full read had not seen).
func (s *SQLite) AddUnowned(ctx context.Context, objs []Unowned) error {
	if err := checkUnowned(objs); err != nil {
		return fmt.Errorf("state: add %d unowned objects: %w", len(objs), err)
	}
	if err := s.write(ctx, func(tx *sql.Tx) error { return insertUnowned(ctx, tx, objs) }); err != nil {
		return fmt.Errorf("state: add %d unowned objects: %w", len(objs), err)
	}
	return nil
}

// ListUnowned returns the unowned objects recorded, in no particular order.
func (s *SQLite) ListUnowned(ctx context.Context) ([]Unowned, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+unownedColumns+" FROM unowned")
	if err != nil {
		return nil, fmt.Errorf("state: list unowned objects: %w", err)
	}
	defer rows.Close()
	out, err := appendRows[Unowned](nil, rows, scanUnowned)
	if err != nil {
		return nil, fmt.Errorf("state: list unowned objects: %w", err)
	}
	return out, nil
}

func (o Unowned) check() error {
	if err := o.Kind.check(); err != nil {
		return err
	}
	if o.TargetID == "" {
		return fmt.Errorf("unowned %s %q: empty target id: %w", o.Kind, o.Name, ErrInvalid)
	}
	if err := errors.Join(checkText("target id", o.TargetID), checkText("external id", o.ExternalID), checkText("name", o.Name)); err != nil {
		return fmt.Errorf("unowned %s: %w", o.Kind, err)
	}
	return nil
}

func insertUnowned(ctx context.Context, tx *sql.Tx, objs []Unowned) error {
	if len(objs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, "INSERT INTO unowned (kind, target_id, external_id, name) VALUES (?, ?, ?, ?) ON CONFLICT (kind, target_id) DO UPDATE SET external_id = excluded.external_id, name = excluded.name")
	if err != nil {
		return err
	}
	defer st.Close()
	for _, o := range objs {
		if _, err := st.ExecContext(ctx, string(o.Kind), o.TargetID, o.ExternalID, o.Name); err != nil {
			return fmt.Errorf("%s %q: %w", o.Kind, o.TargetID, err)
		}
	}
	return nil
}
