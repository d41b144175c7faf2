package file

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// TestFeedAndRunParseOnce checks that the feed's read of a content and the run's targeted read
// of the same bytes parse them once, and that an edit decodes only the records it changed.
func TestFeedAndRunParseOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.yaml")
	if err := os.WriteFile(path, []byte(feedV1), 0o600); err != nil {
		t.Fatal(err)
	}
	src := openSource(t, path).(*source)
	w := watch(t, src, "")
	w.next(t)
	ctx := context.Background()
	if _, _, err := src.ReadEntries(ctx, []string{"u1"}, nil); err != nil {
		t.Fatal(err)
	}
	if parses, decodes, _ := src.cache.stats(); parses != 1 || decodes != 5 {
		t.Errorf("after the feed's and the run's reads: %d parses, %d records decoded; want 1 and 5", parses, decodes)
	}

	writeRename(t, path, feedV2) // u1 and g2 edited, u3 gone, u4 new
	if b := w.next(t); len(b.Changes) != 4 {
		t.Fatalf("got %d changes, want 4: %+v", len(b.Changes), b.Changes)
	}
	got, _, err := src.ReadEntries(ctx, []string{"u1", "u4"}, []string{"g2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if parses, decodes, _ := src.cache.stats(); parses != 2 || decodes != 5+3 {
		t.Errorf("after an edit of three records: %d parses, %d records decoded; want 2 and 8", parses, decodes)
	}
	fresh, err := Parse([]byte(feedV2))
	if err != nil {
		t.Fatal(err)
	}
	want := &connectors.Directory{Users: []connectors.Entry{fresh.Users[0], fresh.Users[2]}, Groups: fresh.Groups[1:]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadEntries after the edit (-fresh parse +got):\n%s", diff)
	}
}

// TestConcurrentReads reads the file from several goroutines (Read, ReadEntries, Check and the
// feed's read, as serve's feed and run goroutines do) while it is rewritten between two
// contents, and checks that each read gives one of them exactly (run it with -race).
func TestConcurrentReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.yaml")
	versions := [][]byte{bigFile(200, 10, 600, 0), bigFile(200, 10, 600, 1)}
	changed := changedUser(200)
	var want []*connectors.Directory
	for _, v := range versions {
		d, err := Parse(v)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	if err := os.WriteFile(path, versions[0], 0o600); err != nil {
		t.Fatal(err)
	}
	src := openSource(t, path).(*source)
	ctx := context.Background()
	oneOf := func(what string, got *connectors.Directory, err error) {
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if !reflect.DeepEqual(got, want[0]) && !reflect.DeepEqual(got, want[1]) {
			t.Errorf("%s gave neither content:\n%s", what, cmp.Diff(want[0], got))
		}
	}
	const rounds = 20
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range rounds {
			writeRename(t, path, string(versions[(i+1)%2]))
		}
	})
	wg.Go(func() {
		for range rounds {
			d, err := src.Read(ctx)
			oneOf("Read", d, err)
		}
	})
	wg.Go(func() {
		f := &feed{s: src}
		for range rounds {
			sn, err := f.read()
			oneOf("the feed's read", sn.dir, err)
		}
	})
	wg.Go(func() {
		for range rounds {
			d, missing, err := src.ReadEntries(ctx, []string{want[0].Users[changed].ID}, nil)
			if err != nil || len(missing) > 0 || len(d.Users) != 1 {
				t.Errorf("ReadEntries: %v, missing %v, %d users", err, missing, len(d.Users))
				continue
			}
			if got := d.Users[0]; !reflect.DeepEqual(got, want[0].Users[changed]) && !reflect.DeepEqual(got, want[1].Users[changed]) {
				t.Errorf("ReadEntries gave neither content's changed user: %+v", got)
			}
		}
	})
	wg.Go(func() {
		for range rounds {
			if _, err := src.Check(ctx); err != nil {
				t.Errorf("Check: %v", err)
			}
		}
	})
	wg.Wait()
}

// TestReadersDoNotModifyTheCachedRead checks what Read's sharing of entries with the cache relies
// on: the mapping (Apply, Report, Explain) and the reconciler's full and targeted reads leave the
// directory they are given as it was, and a caller that rearranges the lists it got (its own)
// changes nothing of the next read.
func TestReadersDoNotModifyTheCachedRead(t *testing.T) {
	src := openSource(t, "testdata/edge.yaml").(*source)
	ctx := context.Background()
	d, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}

	m, err := connectors.Compile(Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	snap := m.Apply(d)
	m.Report(d, snap)
	for _, e := range slices.Concat(d.Users, d.Groups) {
		if _, err := m.Explain(d, e.ID); err != nil {
			t.Fatalf("Explain %s: %v", e.ID, err)
		}
	}
	ds, err := reconcile.NewDirectorySource(reconcile.DirectorySourceConfig{Source: src, Mapping: m})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Desired(ctx); err != nil {
		t.Fatal(err)
	}
	ds.MarkApplied()
	ch := reconcile.Changes{Users: []string{d.Users[0].ID, "e-nobody"}, Groups: []string{d.Groups[0].ID}}
	if _, _, err := ds.Targeted(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(d); string(after) != string(before) {
		t.Errorf("the mapping or the reconciler modified the directory read:\nbefore %s\nafter  %s", before, after)
	}

	// The caller's own lists.
	d.Users[0] = connectors.Entry{ID: "overwritten"}
	slices.Reverse(d.Groups)
	d.Skipped = append(d.Skipped[:0], d.Skipped...)
	again, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(again); string(got) != string(before) {
		t.Errorf("a read after the caller rearranged its lists:\ngot  %s\nwant %s", got, before)
	}
	if parses, _, _ := src.cache.stats(); parses != 1 {
		t.Errorf("%d parses of one content, want 1", parses)
	}
}
