package file

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim"
)

var (
	_ connectors.FeedSource     = (*source)(nil)
	_ connectors.TargetedReader = (*source)(nil)
)

// cursorPrefix starts every cursor of the file feed: the SHA-256 of the content last delivered.
const cursorPrefix = "sha256:"

// PollInterval is how often the file feed also looks at the file's size, time and identity, in
// case a change notification was missed (network filesystems give none).
var PollInterval = 10 * time.Second

// Feed watches the directory file's folder (so that an editor's or git's rename into place and a
// Kubernetes ConfigMap's symlink swap are seen), and stats the file every PollInterval besides.
// Each change of the content yields a batch naming the entries whose content changed, was added
// or was removed, computed against the last content read; its cursor is the content's SHA-256. A
// file that does not parse as a whole yields nothing until it does (a half-saved edit).
func (s *source) Feed(ctx context.Context) (connectors.Feed, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.logger.Warn("file change notifications unavailable; polling the file instead", "err", err, "every", PollInterval.String())
		return &feed{s: s}, nil
	}
	if err := w.Add(filepath.Dir(s.path)); err != nil {
		w.Close()
		s.logger.Warn("cannot watch the directory file's folder; polling the file instead", "err", err, "every", PollInterval.String())
		return &feed{s: s}, nil
	}
	return &feed{s: s, w: w}, nil
}

type feed struct {
	s *source
	w *fsnotify.Watcher // nil: polling only
}

func (f *feed) Close() error {
	if f.w == nil {
		return nil
	}
	return f.w.Close()
}

// snapshot is one read of the file.
type snapshot struct {
	info os.FileInfo
	hash string
	dir  *connectors.Directory // nil when the content did not parse
	err  error                 // why it did not parse
}

func (f *feed) read() (snapshot, error) {
	info, err := os.Stat(f.s.path)
	if err != nil {
		return snapshot{}, fmt.Errorf("file: watch %s: %w", f.s.path, err)
	}
	data, err := os.ReadFile(f.s.path)
	if err != nil {
		return snapshot{}, fmt.Errorf("file: watch %s: %w", f.s.path, err)
	}
	sum, dir, _, err := f.s.cache.parse(data)
	return snapshot{info: info, hash: cursorPrefix + hex.EncodeToString(sum[:]), dir: dir, err: err}, nil
}

// relevant reports whether a change notification in the file's folder may concern the file: the
// file itself, or a name starting with ".." (a Kubernetes ConfigMap swaps its ..data link). Other
// files of the folder (a log written beside it, an editor's swap file) are left to the poll.
func (f *feed) relevant(ev fsnotify.Event) bool {
	name := filepath.Base(ev.Name)
	return name == filepath.Base(f.s.path) || strings.HasPrefix(name, "..")
}

// Watch implements connectors.Feed.
func (f *feed) Watch(ctx context.Context, cursor string, fn func(connectors.ChangeBatch) error) error {
	if cursor != "" && (!strings.HasPrefix(cursor, cursorPrefix) || len(cursor) != len(cursorPrefix)+64) {
		return fmt.Errorf("file: the saved cursor is not one of this feed's: %w", connectors.ErrCursorExpired)
	}
	last, err := f.read()
	if err != nil {
		return err
	}
	// seen is what the last read found (parsed or not): the file is read again only when its
	// identity, time or size differ from it; warned is the content last warned about, so a file
	// that does not parse is reported once per content, not once per event.
	seen, warned := last.info, ""
	if last.dir == nil {
		f.s.logger.Warn("directory file does not parse; the change feed waits for the next edit", "path", f.s.path, "err", last.err)
		warned = last.hash
	}
	switch {
	case cursor == "":
		err = fn(connectors.ChangeBatch{Cursor: last.hash})
	case last.dir == nil:
		// Nothing to diff against until the file parses again.
	case cursor != last.hash:
		err = fn(connectors.ChangeBatch{Cursor: last.hash, Full: true, Reason: "the directory file changed while the feed was stopped"})
	}
	if err != nil {
		return err
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if f.w != nil {
		events, errs = f.w.Events, f.w.Errors
	}
	poll := time.NewTicker(PollInterval)
	defer poll.Stop()
	// Several events come for one save (write, chmod, rename, create): they are settled for a
	// moment and read once.
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-errs:
			if !ok {
				return errors.New("file: change notifications closed")
			}
			return fmt.Errorf("file: change notifications: %w", err)
		case ev, ok := <-events:
			if !ok {
				return errors.New("file: change notifications closed")
			}
			if !f.relevant(ev) {
				continue
			}
			if settle == nil {
				settle = time.After(20 * time.Millisecond)
			}
			continue
		case <-settle:
			settle = nil
		case <-poll.C:
		}
		info, err := os.Stat(f.s.path)
		if err != nil {
			// Removed, or between a remove and the rename into place: wait for the next event.
			f.s.logger.Debug("directory file not there", "err", err)
			continue
		}
		if seen != nil && os.SameFile(seen, info) && info.ModTime().Equal(seen.ModTime()) && info.Size() == seen.Size() {
			continue
		}
		cur, err := f.read()
		if err != nil {
			continue
		}
		seen = cur.info
		if cur.dir == nil && cur.hash != warned {
			f.s.logger.Warn("directory file does not parse; the change feed waits for the next edit", "path", f.s.path, "err", cur.err)
			warned = cur.hash
		}
		if cur.hash == last.hash || cur.dir == nil {
			if cur.dir != nil {
				last.info = cur.info
			}
			continue
		}
		b := connectors.ChangeBatch{Cursor: cur.hash}
		if last.dir == nil {
			b.Full, b.Reason = true, "the directory file did not parse when the feed started"
		} else {
			b.Changes = diff(last.dir, cur.dir, cur.info.ModTime())
		}
		last = cur
		if err := fn(b); err != nil {
			return err
		}
	}
}

// diff lists the entries whose content differs between two reads of the file (a record that
// became invalid, or valid again, counts as changed). Reads of an edited file keep most records
// in place, so the lists are walked side by side while the ids agree, from the start and from the
// end; only the records between, and those with problems, are matched by id.
func diff(old, cur *connectors.Directory, at time.Time) []connectors.Change {
	var out []connectors.Change
	for _, kind := range []connectors.ChangeKind{connectors.ChangeUser, connectors.ChangeGroup} {
		oe, ce := entriesOf(old, kind), entriesOf(cur, kind)
		op, cp := problemsOf(old, kind), problemsOf(cur, kind)
		// aligned marks the ids with problems found among the records walked side by side.
		aligned := map[string]bool{}
		pair := func(i, j int) {
			id := ce[j].ID
			if len(op.byID) > 0 || len(cp.byID) > 0 {
				if _, ok := op.byID[id]; ok {
					aligned[id] = true
				} else if _, ok := cp.byID[id]; ok {
					aligned[id] = true
				}
			}
			a := feedRecord{e: &oe[i], problem: op.byID[id]}
			if !a.same(feedRecord{e: &ce[j], problem: cp.byID[id]}) {
				out = append(out, connectors.Change{Kind: kind, ID: id, At: at})
			}
		}
		n := min(len(oe), len(ce))
		lo := 0
		for ; lo < n && oe[lo].ID == ce[lo].ID; lo++ {
			pair(lo, lo)
		}
		hi := 0
		for ; hi < n-lo && oe[len(oe)-1-hi].ID == ce[len(ce)-1-hi].ID; hi++ {
			pair(len(oe)-1-hi, len(ce)-1-hi)
		}
		o := indexRecords(oe[lo:len(oe)-hi], op, aligned)
		c := indexRecords(ce[lo:len(ce)-hi], cp, aligned)
		for _, id := range c.order {
			if p, ok := o.recs[id]; !ok || !p.same(c.recs[id]) {
				out = append(out, connectors.Change{Kind: kind, ID: id, At: at})
			}
		}
		for _, id := range o.order {
			if _, ok := c.recs[id]; !ok {
				out = append(out, connectors.Change{Kind: kind, ID: id, Deleted: true, At: at})
			}
		}
	}
	return out
}

func entriesOf(d *connectors.Directory, kind connectors.ChangeKind) []connectors.Entry {
	if kind == connectors.ChangeGroup {
		return d.Groups
	}
	return d.Users
}

// problems are a read's skipped records of one kind: their problems by id, and the ids in order.
type problems struct {
	byID  map[string][]scim.Problem
	order []string
}

func problemsOf(d *connectors.Directory, kind connectors.ChangeKind) problems {
	var p problems
	for _, pr := range d.Skipped {
		if connectors.ChangeKind(pr.Kind) != kind {
			continue
		}
		if p.byID == nil {
			p.byID = map[string][]scim.Problem{}
		}
		if _, ok := p.byID[pr.ID]; !ok {
			p.order = append(p.order, pr.ID)
		}
		p.byID[pr.ID] = append(p.byID[pr.ID], pr)
	}
	return p
}

// feedRecord is what one read says of one id of a kind: its entry, its problems, or both (a
// duplicate of an entry is a problem under the same id).
type feedRecord struct {
	e       *connectors.Entry
	problem []scim.Problem
}

// feedRecords are records by id, and the ids in order.
type feedRecords struct {
	recs  map[string]feedRecord
	order []string
}

// indexRecords indexes the entries given and the problems of the ids not in aligned.
func indexRecords(entries []connectors.Entry, p problems, aligned map[string]bool) feedRecords {
	r := feedRecords{recs: make(map[string]feedRecord, len(entries)), order: make([]string, 0, len(entries))}
	for i := range entries {
		r.recs[entries[i].ID] = feedRecord{e: &entries[i]}
		r.order = append(r.order, entries[i].ID)
	}
	for _, id := range p.order {
		if aligned[id] {
			continue
		}
		rec, ok := r.recs[id]
		if !ok {
			r.order = append(r.order, id)
		}
		rec.problem = p.byID[id]
		r.recs[id] = rec
	}
	return r
}

// same reports whether two reads of a record are alike. Entries the source's cache reused share
// their maps and lists, which is seen without comparing them value by value.
func (a feedRecord) same(b feedRecord) bool {
	if (a.e == nil) != (b.e == nil) || len(a.problem) != len(b.problem) {
		return false
	}
	if a.e != nil && !sameEntry(a.e, b.e) {
		return false
	}
	return len(a.problem) == 0 || reflect.DeepEqual(a.problem, b.problem)
}

func sameEntry(a, b *connectors.Entry) bool {
	if a.ID == b.ID && sameList(a.Keys, b.Keys) && sameList(a.Members, b.Members) &&
		reflect.ValueOf(a.Attributes).UnsafePointer() == reflect.ValueOf(b.Attributes).UnsafePointer() {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// sameList reports whether a and b are the same list (not merely equal ones): as reflect.DeepEqual
// has it, a nil list is not the same as an empty one.
func sameList(a, b []string) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}

// ReadEntries implements connectors.TargetedReader: it reads the file (one read, however many
// ids) and returns the entries asked for, with the problems of those among them that are invalid.
func (s *source) ReadEntries(ctx context.Context, userIDs, groupIDs []string) (*connectors.Directory, []string, error) {
	d, err := s.read(ctx) // the entries asked for are copied out below
	if err != nil {
		return nil, nil, err
	}
	want := map[string]bool{}
	for _, id := range userIDs {
		want[scim.KindUser+"/"+id] = true
	}
	for _, id := range groupIDs {
		want[scim.KindGroup+"/"+id] = true
	}
	found := map[string]bool{}
	out := &connectors.Directory{}
	for _, e := range d.Users {
		if k := scim.KindUser + "/" + e.ID; want[k] {
			out.Users, found[k] = append(out.Users, e), true
		}
	}
	for _, e := range d.Groups {
		if k := scim.KindGroup + "/" + e.ID; want[k] {
			out.Groups, found[k] = append(out.Groups, e), true
		}
	}
	for _, p := range d.Skipped {
		if k := p.Kind + "/" + p.ID; want[k] {
			out.Skipped, found[k] = append(out.Skipped, p), true
		}
	}
	var missing []string
	for _, id := range userIDs {
		if !found[scim.KindUser+"/"+id] {
			missing = append(missing, id)
		}
	}
	for _, id := range groupIDs {
		if !found[scim.KindGroup+"/"+id] {
			missing = append(missing, id)
		}
	}
	return out, missing, nil
}
