package connectors

import (
	"context"
	"errors"
	"time"
)

// ChangeKind says what kind of entry changed.
type ChangeKind string

const (
	ChangeUser  ChangeKind = "user"
	ChangeGroup ChangeKind = "group"
)

// Change is one entry a change feed saw change: created, modified, moved, renamed, or deleted.
// A feed that cannot tell users from groups (a deleted entry whose class is gone) sets Kind ""
// and the engine looks the id up in both.
type Change struct {
	Kind ChangeKind `json:"kind,omitempty"`
	// ID is the entry's stable source id (Entry.ID: objectGUID, entryUUID, Google's id).
	ID string `json:"id"`
	// Deleted is true when the entry is gone from the directory (or from the feed's scope).
	Deleted bool `json:"deleted,omitempty"`
	// At is when the source says the change happened, if it says (zero otherwise); the engine
	// measures change-to-target latency from it.
	At time.Time `json:"at,omitempty"`
}

// ChangeBatch is what a feed hands over at once, with the cursor that resumes after it.
type ChangeBatch struct {
	Changes []Change `json:"changes"`
	// Cursor, once the batch is applied, is where the feed resumes after a restart. It is opaque
	// to the engine, which keeps it in the state store. An empty cursor keeps the previous one.
	Cursor string `json:"cursor,omitempty"`
	// Full is set when the feed lost its place (expired or foreign cursor, a server restore, an
	// overflow): the engine then runs a full read instead of a targeted one, and says why
	// (Reason) in its log and status.
	Full   bool   `json:"full,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ErrCursorExpired is returned (wrapped) by a feed that no longer accepts a cursor; the engine
// falls back to a full read and starts the feed afresh.
var ErrCursorExpired = errors.New("change feed cursor no longer accepted")

// Feed is a source's change feed. Watch delivers batches to fn, in order, starting after cursor
// ("" means from now: the feed first establishes its position and may deliver a batch with only
// a Cursor), until ctx ends or the feed fails. fn is called from one goroutine at a time; an
// error from fn stops Watch with that error. A feed polls or holds a server push open as its
// source allows; it never reads the whole directory itself.
type Feed interface {
	Watch(ctx context.Context, cursor string, fn func(ChangeBatch) error) error
	// Close releases the feed's connections.
	Close() error
}

// FeedSource is implemented by sources that have a change feed.
type FeedSource interface {
	Source
	// Feed opens the source's change feed. It returns an error naming what is missing when the
	// server cannot give one (no syncprov overlay, no DirSync right, Reports API not enabled).
	Feed(ctx context.Context) (Feed, error)
}

// TargetedReader is implemented by sources that can read a few entries without reading the
// whole directory (LDAP base-scoped searches, Google users.get and members.list).
type TargetedReader interface {
	// ReadEntries reads the users and groups with the given source ids, each with every
	// attribute a full Read gives it (and, for a group, its direct Members as a full Read names
	// them). Ids that no longer exist or are out of the source's scope are returned in missing.
	// Like Read, it fails as a whole when any part of the read failed.
	ReadEntries(ctx context.Context, userIDs, groupIDs []string) (dir *Directory, missing []string, err error)
}
