package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim"
)

// Changes names the entries a source's change feed saw change, by source id. A change-feed run
// reads only these (connectors.TargetedReader), patches them into the last complete read of the
// source and applies the objects that moved (see DirectorySource.Targeted).
type Changes struct {
	Users  []string `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Either are ids whose kind the feed could not tell (a deleted entry whose class is gone).
	Either []string `json:"either,omitempty"`
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return len(c.Users)+len(c.Groups)+len(c.Either) == 0 }

// Len is the number of ids named.
func (c Changes) Len() int { return len(c.Users) + len(c.Groups) + len(c.Either) }

// merge returns the union of c (nil for none) and o, sorted and without duplicates.
func (c *Changes) merge(o Changes) *Changes {
	var a Changes
	if c != nil {
		a = *c
	}
	return &Changes{Users: union(a.Users, o.Users), Groups: union(a.Groups, o.Groups), Either: union(a.Either, o.Either)}
}

// ChangesOf collects a feed batch's changes by kind.
func ChangesOf(batch []connectors.Change) Changes {
	var c Changes
	for _, ch := range batch {
		switch ch.Kind {
		case connectors.ChangeUser:
			c.Users = append(c.Users, ch.ID)
		case connectors.ChangeGroup:
			c.Groups = append(c.Groups, ch.ID)
		default:
			c.Either = append(c.Either, ch.ID)
		}
	}
	return *c.merge(Changes{})
}

// TargetedFunc reads the changed entries alone and returns the whole desired snapshot with them
// patched in, and the objects the run applies. It returns ErrNoBase (wrapped) when it cannot: the
// run then reads the whole source instead.
type TargetedFunc func(ctx context.Context, ch Changes) (scim.Snapshot, Selection, error)

// ErrNoBase is returned by a TargetedFunc that has nothing to patch: no complete read of the
// source yet, or a source that cannot read single entries.
var ErrNoBase = errors.New("no complete source read to patch")

// readSource reads the desired snapshot: the changed entries alone for a change-feed run that can
// be targeted, else the whole source. It returns the selection the run applies (nil for all).
// The third result tells a targeted change-feed run, whose selection covers everything that moved.
func (r *Reconciler) readSource(ctx context.Context, log *slog.Logger, opts RunOptions) (scim.Snapshot, *Selection, bool, error) {
	if opts.Changes != nil {
		if r.cfg.Targeted == nil {
			log.Info("reading the whole source for a change-feed run", "why", "the source cannot read single entries")
		} else {
			snap, sel, err := r.cfg.Targeted(ctx, *opts.Changes)
			switch {
			case err == nil:
				log.Info("read the changed entries alone", "changed", opts.Changes.Len(), "applying", sel.String())
				return snap, &sel, true, nil
			case errors.Is(err, ErrNoBase):
				log.Info("reading the whole source for a change-feed run", "why", err.Error())
			default:
				return scim.Snapshot{}, nil, false, err
			}
		}
	}
	snap, err := r.cfg.Desired(ctx)
	return snap, opts.Only, false, err
}

// DirectorySource reads a connector's directory for the reconciler and keeps the last complete
// read in memory, so that a change-feed run reads only the changed entries and patches them in.
//
// The copy is not persisted in the state store: serve begins with a full run anyway (it is the
// safety net after a restart), which fills it, and a persisted copy would put every person's
// attributes into the state file and cost a write of the whole directory per change.
type DirectorySource struct {
	src connectors.Source
	// mapDir maps a directory (scoping, nesting, validation): Mapping.Apply by default.
	mapDir func(*connectors.Directory) scim.Snapshot
	onRead func(dir *connectors.Directory, snap scim.Snapshot, targeted bool)
	log    *slog.Logger

	mu  sync.Mutex
	dir *connectors.Directory // the last complete read, with every targeted read patched in
	// read fingerprints dir mapped; applied is read as it was at the last run that applied all
	// of its plan (MarkApplied): a targeted run applies what moved since, whatever runs read the
	// source in between (a dry run, a blocked or failed run, a webhook's selection). Only
	// fingerprints are kept, not the mapped records: the reconciler holds a run's snapshot.
	read, applied *sums
	// Reads counts the source requests: full reads and targeted reads.
	fullReads, targetedReads int
}

// DirectorySourceConfig configures a DirectorySource.
type DirectorySourceConfig struct {
	Source  connectors.Source
	Mapping *connectors.Mapping
	// OnRead, when set, is told every mapped read (for the mapping report).
	OnRead func(dir *connectors.Directory, snap scim.Snapshot, targeted bool)
	Logger *slog.Logger
}

// NewDirectorySource returns a DirectorySource; its Desired and Targeted are the reconciler's
// Config.Desired and Config.Targeted.
func NewDirectorySource(cfg DirectorySourceConfig) (*DirectorySource, error) {
	if cfg.Source == nil || cfg.Mapping == nil {
		return nil, errors.New("reconcile: DirectorySourceConfig needs a Source and a Mapping")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DirectorySource{src: cfg.Source, mapDir: cfg.Mapping.Apply, onRead: cfg.OnRead, log: log}, nil
}

// Desired reads the whole source, maps it and keeps it for the targeted runs after it. A failed
// read keeps the previous copy.
func (d *DirectorySource) Desired(ctx context.Context) (scim.Snapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fullReads++
	dir, err := d.src.Read(ctx)
	if err != nil {
		return scim.Snapshot{}, err
	}
	snap := d.mapDir(dir)
	d.dir, d.read = dir, sumsOf(snap)
	if d.onRead != nil {
		d.onRead(dir, snap, false)
	}
	return snap, nil
}

// MarkApplied records that the run that just read the source applied all of its plan; it is
// the reconciler's Config.OnApplied.
func (d *DirectorySource) MarkApplied() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applied = d.read
}

// Reads returns how many full and targeted source reads the DirectorySource made.
func (d *DirectorySource) Reads() (full, targeted int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fullReads, d.targetedReads
}

// CanTarget reports whether the source reads single entries.
func (d *DirectorySource) CanTarget() bool {
	_, ok := d.src.(connectors.TargetedReader)
	return ok
}

// Targeted reads the changed entries alone (every one of them, deleted ones too: coalesced
// batches lose their order, so the source says what is there now), patches them into the last
// complete read, maps the whole patched directory exactly as a full read is mapped, and returns
// it with the objects to apply: the changed entries, and every user or group whose mapped record
// moved, such as each ancestor of a changed nested group whose flattened members changed.
func (d *DirectorySource) Targeted(ctx context.Context, ch Changes) (scim.Snapshot, Selection, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tr, ok := d.src.(connectors.TargetedReader)
	if !ok {
		return scim.Snapshot{}, Selection{}, fmt.Errorf("%w: the source cannot read single entries", ErrNoBase)
	}
	if d.dir == nil {
		return scim.Snapshot{}, Selection{}, fmt.Errorf("%w: no full read since the start", ErrNoBase)
	}
	isUser, isGroup := ids(d.dir.Users), ids(d.dir.Groups)
	var users, groups []string
	for _, id := range ch.Users {
		users = append(users, id)
		if isGroup[id] {
			groups = append(groups, id)
		}
	}
	for _, id := range ch.Groups {
		groups = append(groups, id)
		if isUser[id] {
			users = append(users, id)
		}
	}
	for _, id := range ch.Either {
		u, g := isUser[id], isGroup[id]
		if u || !g {
			users = append(users, id)
		}
		if g || !u {
			groups = append(groups, id)
		}
	}
	users, groups = union(users, nil), union(groups, nil)
	d.targetedReads++
	got, missing, err := tr.ReadEntries(ctx, users, groups)
	if err != nil {
		return scim.Snapshot{}, Selection{}, err
	}
	if len(missing) > 0 {
		d.log.Debug("changed entries gone from the source or its scope", "ids", missing)
	}
	dir := patch(d.dir, got, users, groups)
	snap := d.mapDir(dir)
	cur := sumsOf(snap)
	sel := d.applied.moved(cur)
	sel = sel.Merge(Selection{Users: users, Groups: groups})
	d.dir, d.read = dir, cur
	if d.onRead != nil {
		d.onRead(dir, snap, true)
	}
	return snap, sel, nil
}

func ids(es []connectors.Entry) map[string]bool {
	m := make(map[string]bool, len(es))
	for _, e := range es {
		m[e.ID] = true
	}
	return m
}

// patch returns a copy of base with the entries read in got in place of the ones asked for:
// replaced where they were, appended when new, and removed when the read did not return them.
func patch(base, got *connectors.Directory, users, groups []string) *connectors.Directory {
	if got == nil {
		got = &connectors.Directory{}
	}
	out := &connectors.Directory{
		Users:  patchEntries(base.Users, got.Users, users),
		Groups: patchEntries(base.Groups, got.Groups, groups),
	}
	asked := map[string]bool{}
	for _, id := range users {
		asked[scim.KindUser+"/"+id] = true
	}
	for _, id := range groups {
		asked[scim.KindGroup+"/"+id] = true
	}
	for _, p := range base.Skipped {
		if !asked[p.Kind+"/"+p.ID] {
			out.Skipped = append(out.Skipped, p)
		}
	}
	for _, p := range got.Skipped {
		if asked[p.Kind+"/"+p.ID] {
			out.Skipped = append(out.Skipped, p)
		}
	}
	return out
}

func patchEntries(base, got []connectors.Entry, asked []string) []connectors.Entry {
	want := make(map[string]bool, len(asked))
	for _, id := range asked {
		want[id] = true
	}
	fresh := map[string]connectors.Entry{}
	for _, e := range got {
		if want[e.ID] {
			fresh[e.ID] = e
		}
	}
	out := make([]connectors.Entry, 0, len(base)+len(fresh))
	for _, e := range base {
		if !want[e.ID] {
			out = append(out, e)
			continue
		}
		if n, ok := fresh[e.ID]; ok {
			out = append(out, n)
			delete(fresh, e.ID)
		}
	}
	for _, e := range got { // new entries, in the order read
		if n, ok := fresh[e.ID]; ok {
			out = append(out, n)
			delete(fresh, e.ID)
		}
	}
	return out
}

func (s Selection) add(kind, id string) Selection {
	if kind == scim.KindGroup {
		s.Groups = append(s.Groups, id)
	} else {
		s.Users = append(s.Users, id)
	}
	return s
}
