// Package state is scimbridge's durable memory: which target objects scimbridge owns (externalId
// to target id, with the JSON and fingerprint of what it last wrote), the write-ahead intents of
// creates in flight, the memberships of owned groups as last written, a few key/values (feed
// cursors among them), the history of runs, the objects it does not own that the last full read
// of the target saw (see ReplaceUnowned), and the leader term that fences a replaced leader.
//
// Store is the interface; two implementations hold the same things with the same behaviour:
//
//   - SQLite (Open): one file, the embedded default. One writer process at a time, guarded by an
//     OS file lock beside the file (AcquireLock).
//   - Postgres (OpenPostgres): a PostgreSQL database shared by several replicas. One writer at a
//     time, guarded by a session advisory lock (AcquireLock with a postgres:// URL), and a leader
//     term checked inside every write transaction (see Fence).
//
// OpenStore picks one from a location: a postgres:// or postgresql:// URL, else a file path.
//
// Every write commits before it returns, so a process killed at any instant leaves a store that
// holds every write that returned and none of a write that did not. Calls are safe for concurrent
// use. Both stores apply their versioned schema migrations when they open, each step in its own
// transaction, so that several processes opening one store at once are safe.
//
// Times are passed in by the caller; the store never reads the clock.
//
//	st, err := state.OpenStore(ctx, "/var/lib/scimbridge/state.db", state.WithLogger(log))
//	if err != nil { ... }
//	defer st.Close()
//	err = st.RecordPending(ctx, state.KindUser, []string{"u-1001"}, now)
//	// ... POST /Users ...
//	obj, err := state.NewUserObject(targetID, user, now)
//	err = st.PutObjects(ctx, []state.Object{obj}) // also clears the pending intent
//
// # Fencing
//
// A leader term (fencing token) lives in the store: BeginTerm increments it and records the
// holder, and Fence(term) makes every later write transaction of that Store check, inside the
// transaction, that the term is still the one given, or fail with ErrFenced having written
// nothing. A replica that wins the leader lock calls BeginTerm and then Fence with the new term;
// an old leader that was paused past its lease and wakes up finds the term moved on and cannot
// write. On PostgreSQL the check reads the term row FOR SHARE, so a BeginTerm waits for writes
// of the old term in flight to commit and every write after it sees the new term. On SQLite the
// file lock is the real guard (one process at a time); the term check is the same and cheap.
// Fence(0) turns the check off, which is the default.
package state

import (
	"context"
	"strings"
	"time"
)

// Store is the state store: ownership, pending creates, memberships, meta key/values, unowned
// objects, run history and the leader term. *SQLite and *Postgres implement it with the same
// behaviour (the conformance tests run against both). Methods are safe for concurrent use; every
// write is one transaction that commits before the method returns.
type Store interface {
	// Close closes the store. Calls after Close fail.
	Close() error
	// Location names the store for messages: the file path, or the database URL without its
	// password.
	Location() string
	// IntegrityCheck checks the store's consistency; a problem wraps ErrCorrupt.
	IntegrityCheck(ctx context.Context) error
	// Reset forgets ownership, pending creates, memberships, unowned objects and meta; the run
	// history and the leader term stay.
	Reset(ctx context.Context) error
	// Stats counts the owned users and groups, the memberships and the pending creates.
	Stats(ctx context.Context) (Stats, error)

	// RecordPending records that creates of these objects are about to be sent, at now.
	RecordPending(ctx context.Context, kind Kind, externalIDs []string, now time.Time) error
	// Pending returns the externalIds of kind with pending creates.
	Pending(ctx context.Context, kind Kind) (map[string]bool, error)
	// PendingTimes returns the pending creates of kind with the time each was recorded.
	PendingTimes(ctx context.Context, kind Kind) (map[string]time.Time, error)
	// ClearPending forgets pending creates.
	ClearPending(ctx context.Context, kind Kind, externalIDs []string) error
	// PutObjects upserts owned objects by (Kind, ExternalID) and clears their pending creates.
	PutObjects(ctx context.Context, objs []Object) error
	// DeleteObjects forgets owned objects, their pending creates and their memberships.
	DeleteObjects(ctx context.Context, kind Kind, externalIDs []string) error
	// Objects returns every owned object of kind, sorted by ExternalID (byte order).
	Objects(ctx context.Context, kind Kind) ([]Object, error)
	// ObjectsByID returns the owned objects of a kind whose externalIds are listed (those that
	// exist; unknown ids are not an error), in externalId order, like Objects restricted to ids.
	// The list may be of any length, and may hold duplicates.
	ObjectsByID(ctx context.Context, kind Kind, externalIDs []string) ([]Object, error)
	// ObjectsByName returns the owned objects of a kind whose name (userName for users,
	// displayName for groups, as recorded in the object's data) equals one of names once both
	// are lower-cased with strings.ToLower (the plan compares names so), in externalId order.
	// The list may be of any length and may hold duplicates; unknown names are not an error.
	ObjectsByName(ctx context.Context, kind Kind, names []string) ([]Object, error)

	// AddMembers records members of an owned group (ErrNotOwned otherwise).
	AddMembers(ctx context.Context, groupExternalID string, userExternalIDs []string) error
	// AddMemberships records memberships of any owned groups in one transaction.
	AddMemberships(ctx context.Context, ms []Membership) error
	// RemoveMembers forgets memberships of a group.
	RemoveMembers(ctx context.Context, groupExternalID string, userExternalIDs []string) error
	// SetMembers replaces the recorded members of an owned group.
	SetMembers(ctx context.Context, groupExternalID string, userExternalIDs []string) error
	// RemoveUserEverywhere forgets every membership of a user.
	RemoveUserEverywhere(ctx context.Context, userExternalID string) error
	// Members returns the members of every owned group that has any, each list sorted.
	Members(ctx context.Context) (map[string][]string, error)
	// MembersOf returns the recorded members of the listed groups, by group externalId, each
	// list sorted like Members; a group with no recorded member is absent.
	MembersOf(ctx context.Context, groups []string) (map[string][]string, error)
	// GroupsOf returns the recorded memberships of the listed users: by group externalId, the
	// listed users that are members of it (sorted); groups holding none of them are absent.
	GroupsOf(ctx context.Context, users []string) (map[string][]string, error)

	// Meta returns the value stored under key, and whether there is one.
	Meta(ctx context.Context, key string) (string, bool, error)
	// SetMeta stores value under key.
	SetMeta(ctx context.Context, key, value string) error
	// DeleteMeta removes key.
	DeleteMeta(ctx context.Context, key string) error

	// StartRun records the start of a run, closing runs left open as interrupted.
	StartRun(ctx context.Context, trigger string, dryRun bool, now time.Time) (int64, error)
	// FinishRun records the end of a run.
	FinishRun(ctx context.Context, id int64, result string, counts Counts, errs []string, plan string, now time.Time) error
	// Runs returns up to limit runs, newest first.
	Runs(ctx context.Context, limit int) ([]Run, error)
	// GetRun returns one run, or an error wrapping ErrRunNotFound.
	GetRun(ctx context.Context, id int64) (Run, error)
	// LastSuccess returns when the newest successful run that was not a dry run ended.
	LastSuccess(ctx context.Context) (time.Time, bool, error)

	// ReplaceUnowned records objs as the whole set of unowned target objects.
	ReplaceUnowned(ctx context.Context, objs []Unowned) error
	// AddUnowned records objs beside the unowned objects already recorded.
	AddUnowned(ctx context.Context, objs []Unowned) error
	// ListUnowned returns the unowned objects recorded.
	ListUnowned(ctx context.Context) ([]Unowned, error)

	// BeginTerm starts a new leader term for holder: it increments the term, records holder and
	// now, and returns the new term. It is not itself fenced.
	BeginTerm(ctx context.Context, holder string, now time.Time) (int64, error)
	// Fence makes every later write check that the leader term is still term, or fail with
	// ErrFenced; 0 turns the check off.
	Fence(term int64)
	// Leader returns the current leader term (zero before the first BeginTerm).
	Leader(ctx context.Context) (Term, error)

	// Export reads everything the store holds, for `state migrate` and its verification.
	Export(ctx context.Context) (*Dump, error)
	// Import writes d into the store in one transaction. Unless replace is true it refuses a
	// store that holds anything (ErrNotEmpty); with replace, what the store held is dropped.
	Import(ctx context.Context, d *Dump, replace bool) error
}

var (
	_ Store = (*SQLite)(nil)
	_ Store = (*Postgres)(nil)
)

// IsPostgresURL reports whether location names a PostgreSQL database (postgres:// or
// postgresql://) rather than a SQLite file.
func IsPostgresURL(location string) bool {
	l := strings.ToLower(location)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// OpenStore opens the store at location: PostgreSQL for a postgres:// URL (OpenPostgres), else
// the SQLite file at that path (Open).
func OpenStore(ctx context.Context, location string, opts ...Option) (Store, error) {
	if IsPostgresURL(location) {
		return OpenPostgres(ctx, location, opts...)
	}
	return Open(ctx, location, opts...)
}
