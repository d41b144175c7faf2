package file

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
)

const feedV1 = `users:
  - {id: u1, userName: one@example.com, givenName: One, familyName: A}
  - {id: u2, userName: two@example.com, givenName: Two, familyName: B}
  - {id: u3, userName: three@example.com, givenName: Three, familyName: C}
groups:
  - {id: g1, name: One, members: [u1, g2]}
  - {id: g2, name: Two, members: [u2]}
`

// feedV2 renames u1, removes u3, adds u4, moves u2 from g2 to g1 and leaves g1's own record alone.
const feedV2 = `users:
  - {id: u1, userName: one@example.com, givenName: Uno, familyName: A}
  - {id: u2, userName: two@example.com, givenName: Two, familyName: B}
  - {id: u4, userName: four@example.com, givenName: Four, familyName: D}
groups:
  - {id: g1, name: One, members: [u1, g2]}
  - {id: g2, name: Two, members: [u4]}
`

// writeRename writes content the way editors and git do: a temporary file renamed over the path.
func writeRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type watched struct {
	batches chan connectors.ChangeBatch
	done    chan error
	cancel  context.CancelFunc
}

func watch(t *testing.T, src connectors.Source, cursor string) *watched {
	t.Helper()
	fs, ok := src.(connectors.FeedSource)
	if !ok {
		t.Fatal("the file source is no FeedSource")
	}
	ctx, cancel := context.WithCancel(context.Background())
	f, err := fs.Feed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{batches: make(chan connectors.ChangeBatch, 10), done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- f.Watch(ctx, cursor, func(b connectors.ChangeBatch) error { w.batches <- b; return nil })
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
		f.Close()
	})
	return w
}

func (w *watched) next(t *testing.T) connectors.ChangeBatch {
	t.Helper()
	select {
	case b := <-w.batches:
		return b
	case err := <-w.done:
		t.Fatalf("feed ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no batch within 5s")
	}
	return connectors.ChangeBatch{}
}

func (w *watched) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case b := <-w.batches:
		t.Fatalf("got batch %+v, want none", b)
	case <-time.After(d):
	}
}

type change struct {
	Kind    connectors.ChangeKind
	ID      string
	Deleted bool
}

func changesOf(b connectors.ChangeBatch) []change {
	var out []change
	for _, c := range b.Changes {
		if c.At.IsZero() {
			out = append(out, change{Kind: "at missing", ID: c.ID})
		}
		out = append(out, change{c.Kind, c.ID, c.Deleted})
	}
	slices.SortFunc(out, func(a, b change) int {
		if a.Kind != b.Kind {
			return map[bool]int{true: -1, false: 1}[a.Kind > b.Kind]
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out
}

func TestFeedNamesTheChangedEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.yaml")
	if err := os.WriteFile(path, []byte(feedV1), 0o600); err != nil {
		t.Fatal(err)
	}
	w := watch(t, openSource(t, path), "")
	first := w.next(t)
	if first.Cursor == "" || len(first.Changes) > 0 || first.Full {
		t.Fatalf("first batch %+v, want only a cursor", first)
	}

	writeRename(t, path, feedV2)
	b := w.next(t)
	want := []change{
		{connectors.ChangeUser, "u1", false}, {connectors.ChangeUser, "u3", true}, {connectors.ChangeUser, "u4", false},
		{connectors.ChangeGroup, "g2", false},
	}
	if diff := cmp.Diff(changesOf(b), want); diff != "" {
		t.Errorf("changes after a rename into place (-got +want):\n%s", diff)
	}
	if b.Cursor == first.Cursor || b.Full {
		t.Errorf("cursor %q (full %v) after an edit, want a new one", b.Cursor, b.Full)
	}

	// Saving the same content again, or a half-written file, yields nothing.
	writeRename(t, path, feedV2)
	writeRename(t, path, "users: [")
	w.none(t, 300*time.Millisecond)
	// A record that becomes invalid is a change (its target object is then left alone).
	writeRename(t, path, feedV2+"  - {id: g3, name: Two}\n")
	b = w.next(t)
	if diff := cmp.Diff(changesOf(b), []change{{connectors.ChangeGroup, "g3", false}}); diff != "" {
		t.Errorf("changes after a duplicate group name (-got +want):\n%s", diff)
	}
}

func TestFeedResumesFromItsCursor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.yaml")
	if err := os.WriteFile(path, []byte(feedV1), 0o600); err != nil {
		t.Fatal(err)
	}
	src := openSource(t, path)
	w := watch(t, src, "")
	cursor := w.next(t).Cursor
	w.cancel()

	// The same content: the feed resumes silently, then reports the next edit.
	w = watch(t, src, cursor)
	w.none(t, 200*time.Millisecond)
	if err := os.WriteFile(path, []byte(feedV2), 0o600); err != nil { // written in place this time
		t.Fatal(err)
	}
	if b := w.next(t); len(b.Changes) != 4 {
		t.Errorf("got %d changes after an in-place write, want 4: %+v", len(b.Changes), b.Changes)
	}
	w.cancel()

	// The file changed while nobody watched: the feed cannot tell what changed.
	w = watch(t, src, cursor)
	if b := w.next(t); !b.Full || b.Reason == "" {
		t.Errorf("got %+v after a change while stopped, want a Full batch with a reason", b)
	}

	// A cursor that is not the feed's own is refused.
	f, err := src.(connectors.FeedSource).Feed(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = f.Watch(context.Background(), "dirsync:abc", func(connectors.ChangeBatch) error { return nil })
	if !errors.Is(err, connectors.ErrCursorExpired) {
		t.Errorf("Watch with a foreign cursor: got %v, want ErrCursorExpired", err)
	}
}

func TestReadEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.yaml")
	if err := os.WriteFile(path, []byte(feedV1+"  - {id: g3, name: Two}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := openSource(t, path).(connectors.TargetedReader)
	d, missing, err := tr.ReadEntries(context.Background(), []string{"u2", "gone"}, []string{"g1", "g3"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range d.Users {
		got = append(got, "user "+e.ID+" "+e.Get("userName"))
	}
	for _, e := range d.Groups {
		got = append(got, "group "+e.ID)
	}
	for _, p := range d.Skipped {
		got = append(got, "skipped "+p.Kind+" "+p.ID)
	}
	want := []string{"user u2 two@example.com", "group g1", "skipped group g3"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("ReadEntries (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(missing, []string{"gone"}); diff != "" {
		t.Errorf("missing (-got +want):\n%s", diff)
	}
}

// countingHandler counts the warnings logged.
type countingHandler struct {
	slog.Handler
	warns atomic.Int32
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}

// TestFeedWarnsOncePerBrokenContent checks that a directory file that does not parse is reported
// once per content, and that writes to other files of its folder (a log written beside it) neither
// re-read it nor warn again: before, each of them did, a loop when the log was the service's own.
func TestFeedWarnsOncePerBrokenContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "directory.yaml")
	if err := os.WriteFile(path, []byte(feedV1), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &countingHandler{Handler: slog.DiscardHandler}
	src, err := Config{Path: path}.Open(slog.New(h))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	w := watch(t, src, "")
	w.next(t)

	writeRename(t, path, "users: [\n")
	log := filepath.Join(dir, "serve.log")
	for i := range 50 {
		if err := os.WriteFile(log, []byte(strings.Repeat("x", i+1)), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.none(t, 200*time.Millisecond)
	if got := h.warns.Load(); got != 1 {
		t.Errorf("warnings for one broken content and 50 writes beside it: got %d, want 1", got)
	}

	// The file fixed: the feed goes on with the changes against the last good content.
	writeRename(t, path, feedV2)
	if b := w.next(t); len(b.Changes) != 4 {
		t.Errorf("got %d changes after the fix, want 4: %+v", len(b.Changes), b.Changes)
	}
}
