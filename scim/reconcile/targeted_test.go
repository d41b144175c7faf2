package reconcile_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/file"
	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// fdir is a YAML directory file a test edits: users by id, groups by id with their members.
type fdir struct {
	users  map[string]map[string]any
	groups map[string]map[string]any
}

func newFdir() *fdir {
	return &fdir{users: map[string]map[string]any{}, groups: map[string]map[string]any{}}
}

func (d *fdir) user(id, name, title string) {
	d.users[id] = map[string]any{"id": id, "userName": name + "@example.com", "givenName": name,
		"familyName": "Example", "email": name + "@example.com", "title": title}
}

func (d *fdir) group(id, name string, members ...string) {
	d.groups[id] = map[string]any{"id": id, "name": name, "members": members}
}

func sortedValues(m map[string]map[string]any) []map[string]any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// write saves the file as editors do: a temporary file renamed into place.
func (d *fdir) write(t *testing.T, path string) {
	t.Helper()
	data, err := yaml.Marshal(map[string]any{"users": sortedValues(d.users), "groups": sortedValues(d.groups)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// countingSource counts the requests made of the real file source.
type countingSource struct {
	connectors.Source
	reads, targeted atomic.Int64
}

func (c *countingSource) Read(ctx context.Context) (*connectors.Directory, error) {
	c.reads.Add(1)
	return c.Source.Read(ctx)
}

func (c *countingSource) ReadEntries(ctx context.Context, users, groups []string) (*connectors.Directory, []string, error) {
	c.targeted.Add(1)
	return c.Source.(connectors.TargetedReader).ReadEntries(ctx, users, groups)
}

func (c *countingSource) Feed(ctx context.Context) (connectors.Feed, error) {
	return c.Source.(connectors.FeedSource).Feed(ctx)
}

// fileEnv is an emulator and state store (env) synced from a YAML file through a DirectorySource.
type fileEnv struct {
	*env
	path string
	src  *countingSource
	ds   *reconcile.DirectorySource
	r    *reconcile.Reconciler
	mp   *connectors.Mapping
	opts plan.Options
}

func newFileEnv(t *testing.T, d *fdir, opts plan.Options) *fileEnv {
	t.Helper()
	fe := &fileEnv{env: newEnv(t), path: filepath.Join(t.TempDir(), "directory.yaml"), opts: opts}
	d.write(t, fe.path)
	inner, err := file.Config{Path: fe.path}.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	fe.src = &countingSource{Source: inner}
	if fe.mp, err = connectors.Compile(file.Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{}); err != nil {
		t.Fatal(err)
	}
	if fe.ds, err = reconcile.NewDirectorySource(reconcile.DirectorySourceConfig{Source: fe.src, Mapping: fe.mp}); err != nil {
		t.Fatal(err)
	}
	fe.r = fe.reconciler(func(c *reconcile.Config) {
		c.Desired, c.Targeted, c.DesiredNormalized, c.Plan = fe.ds.Desired, fe.ds.Targeted, true, opts
		c.OnApplied = fe.ds.MarkApplied
		c.Logger = testLogger()
		c.FullReconcileEvery = time.Hour
	})
	return fe
}

// fullPlan is what a full run would plan now (a dry run reading the whole file apart from fe.ds).
func (fe *fileEnv) fullPlan(t *testing.T) *plan.Plan {
	t.Helper()
	r := fe.reconciler(func(c *reconcile.Config) {
		c.Plan = fe.opts
		c.Desired = func(ctx context.Context) (snap scim.Snapshot, err error) {
			d, err := fe.src.Source.Read(ctx)
			if err != nil {
				return snap, err
			}
			return fe.mp.Apply(d), nil
		}
	})
	res := fe.run(r, reconcile.RunOptions{DryRun: true})
	return res.Plan
}

// feedChanges runs the file's change feed around edit and returns the changes of its batch.
func (fe *fileEnv) feedChanges(t *testing.T, edit func()) reconcile.Changes {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := fe.src.Feed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	batches := make(chan connectors.ChangeBatch, 4)
	go func() { _ = f.Watch(ctx, "", func(b connectors.ChangeBatch) error { batches <- b; return nil }) }()
	<-batches // the feed's position
	edit()
	select {
	case b := <-batches:
		return reconcile.ChangesOf(b.Changes)
	case <-time.After(10 * time.Second):
		t.Fatal("the file feed saw no change")
	}
	return reconcile.Changes{}
}

// nestedCompany: Root holds alice and Middle; Middle holds bob and Leaf; Leaf holds carol.
func nestedCompany() *fdir {
	d := newFdir()
	for i, n := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		d.user(fmt.Sprintf("u%d", i+1), n, "Engineer")
	}
	d.group("g-root", "Root", "u1", "g-mid")
	d.group("g-mid", "Middle", "u2", "g-leaf")
	d.group("g-leaf", "Leaf", "u3")
	d.group("g-other", "Other", "u4", "u5")
	return d
}

// TestTargetedRunPlansWhatAFullRunWould: a leaver, a joiner added to a nested group, a rename and
// a membership move, seen through the file's change feed and read through targeted reads alone, plan exactly what a full run would (the
// leaver deleted or disabled as configured, every ancestor of the nested group updated), the
// target accepts exactly the lower bound of writes, and the source is not read whole.
func TestTargetedRunPlansWhatAFullRunWould(t *testing.T) {
	for _, dep := range []plan.Deprovision{plan.DeprovisionDelete, plan.DeprovisionDisable} {
		t.Run(string(dep), func(t *testing.T) {
			d := nestedCompany()
			fe := newFileEnv(t, d, plan.Options{Deprovision: dep})
			fe.run(fe.r, reconcile.RunOptions{})

			// The edit, as the file's change feed sees it.
			changes := fe.feedChanges(t, func() {
				delete(d.users, "u5")                      // a leaver
				d.group("g-other", "Other", "u4")          // its membership goes with it
				d.user("u7", "grace", "Engineer")          // a joiner ...
				d.group("g-leaf", "Leaf", "u3", "u7")      // ... into the innermost nested group
				d.user("u1", "alice", "Director")          // an update
				d.group("g-mid", "Middle", "u6", "g-leaf") // bob moved out, frank in
				d.write(t, fe.path)
			})
			if diff := cmp.Diff(changes, reconcile.Changes{Users: []string{"u1", "u5", "u7"}, Groups: []string{"g-leaf", "g-mid", "g-other"}}); diff != "" {
				t.Errorf("the feed's changes (-got +want):\n%s", diff)
			}
			want := fe.fullPlan(t)

			fullBefore, targetedBefore := fe.src.reads.Load(), fe.src.targeted.Load()
			fe.srv.Emu.ResetStats()
			res := fe.run(fe.r, reconcile.RunOptions{Trigger: reconcile.TriggerFeed, Changes: &changes})
			if n := fe.src.reads.Load() - fullBefore; n != 0 {
				t.Errorf("full source reads in a targeted run: %d, want 0", n)
			}
			if n := fe.src.targeted.Load() - targetedBefore; n != 1 {
				t.Errorf("targeted source reads: %d, want 1", n)
			}
			if diff := cmp.Diff(res.Plan.Summarize(100), want.Summarize(100)); diff != "" {
				t.Errorf("targeted plan against a full run's (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(res.Plan.Changes, want.Changes); diff != "" {
				t.Errorf("targeted plan's changes against a full run's (-got +want):\n%s", diff)
			}
			if got, lb := acceptedWrites(fe.srv.Emu.Stats()), int64(want.LowerBound(100)); got != lb {
				t.Errorf("accepted writes %d, lower bound %d", got, lb)
			}
			v := fe.view()
			if got, want := v.Groups["Root"], []string{"alice@example.com", "carol@example.com", "frank@example.com", "grace@example.com"}; !slices.Equal(got, want) {
				t.Errorf("Root members %v, want %v (nested Middle and Leaf flattened)", got, want)
			}
			if got, want := v.Groups["Middle"], []string{"carol@example.com", "frank@example.com", "grace@example.com"}; !slices.Equal(got, want) {
				t.Errorf("Middle members %v, want %v", got, want)
			}
			erin, ok := v.Users["erin@example.com"]
			switch dep {
			case plan.DeprovisionDelete:
				if ok {
					t.Errorf("leaver still there: %s", erin)
				}
			case plan.DeprovisionDisable:
				if erin != "u5 erin@example.com false" {
					t.Errorf("leaver %q, want disabled", erin)
				}
			}
			// After it a full read of source and target plans nothing.
			res = fe.run(fe.r, reconcile.RunOptions{FullRead: true, DryRun: true})
			if !res.Plan.Empty() {
				t.Errorf("a full read after the targeted run plans %+v", res.Plan.Summarize(100))
			}
		})
	}
}

// TestTargetedRunWithoutBaseReadsEverything: before any full read, a change-feed run reads the
// whole source (and applies everything).
func TestTargetedRunWithoutBaseReadsEverything(t *testing.T) {
	fe := newFileEnv(t, nestedCompany(), plan.Options{})
	res := fe.run(fe.r, reconcile.RunOptions{Trigger: reconcile.TriggerFeed, Changes: &reconcile.Changes{Users: []string{"u1"}}})
	if fe.src.reads.Load() != 1 || fe.src.targeted.Load() != 0 {
		t.Errorf("reads full %d targeted %d, want 1 and 0", fe.src.reads.Load(), fe.src.targeted.Load())
	}
	if res.Only != nil || res.Counts.Created != 10 {
		t.Errorf("run only %v created %d, want everything and 10", res.Only, res.Counts.Created)
	}
}

// testLogger shows the engine's log lines under -v.
func testLogger() *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestTargetedRunAfterADryRun: a dry run (or a blocked one) that read the source after a nested
// group changed does not hide the group's ancestors from the next change-feed run.
func TestTargetedRunAfterADryRun(t *testing.T) {
	d := nestedCompany()
	fe := newFileEnv(t, d, plan.Options{})
	fe.run(fe.r, reconcile.RunOptions{})
	d.group("g-leaf", "Leaf", "u3", "u6")
	d.write(t, fe.path)
	fe.run(fe.r, reconcile.RunOptions{DryRun: true})
	res := fe.run(fe.r, reconcile.RunOptions{Trigger: reconcile.TriggerFeed, Changes: &reconcile.Changes{Groups: []string{"g-leaf"}}})
	if diff := cmp.Diff(*res.Only, reconcile.Selection{Groups: []string{"g-leaf", "g-mid", "g-root"}}); diff != "" {
		t.Errorf("selection (-got +want):\n%s", diff)
	}
	if res.Counts.MemberAdds != 3 {
		t.Errorf("member adds %d, want 3 (frank into Leaf, Middle and Root)", res.Counts.MemberAdds)
	}
}

// TestFeedRunRunsAccessWhenGroupsMove: a change-feed run that creates, renames or deletes a
// group runs the further phase (access), so that a new group gets its assignments within the
// minute; one that changes only users and memberships does not (the scheduled full runs do).
func TestFeedRunRunsAccessWhenGroupsMove(t *testing.T) {
	d := nestedCompany()
	fe := newFileEnv(t, d, plan.Options{})
	var calls []int // the number of groups the phase saw in the source, per call
	fe.r = fe.reconciler(func(c *reconcile.Config) {
		c.Desired, c.Targeted, c.DesiredNormalized, c.Plan = fe.ds.Desired, fe.ds.Targeted, true, fe.opts
		c.OnApplied = fe.ds.MarkApplied
		c.FullReconcileEvery = time.Hour
		c.After = func(_ context.Context, run *reconcile.AfterRun) error {
			calls = append(calls, len(run.Desired.Groups))
			return nil
		}
	})
	fe.run(fe.r, reconcile.RunOptions{})
	feedRun := func(ch reconcile.Changes) {
		t.Helper()
		fe.run(fe.r, reconcile.RunOptions{Trigger: reconcile.TriggerFeed, Changes: &ch})
	}
	d.user("u1", "alice", "Director")
	d.write(t, fe.path)
	feedRun(reconcile.Changes{Users: []string{"u1"}})
	d.group("g-new", "New", "u1")
	d.write(t, fe.path)
	feedRun(reconcile.Changes{Groups: []string{"g-new"}})
	d.group("g-other", "Others", "u4", "u5")
	d.write(t, fe.path)
	feedRun(reconcile.Changes{Groups: []string{"g-other"}})
	if diff := cmp.Diff(calls, []int{4, 5, 5}); diff != "" {
		t.Errorf("access phase calls, by the groups it saw (-got +want): the full run, the new group's and the rename's, not the title's:\n%s", diff)
	}
	e := fe.run(fe.r, reconcile.RunOptions{Only: &reconcile.Selection{Groups: []string{"g-new"}}})
	if len(calls) != 3 || e.AfterSummary != "" {
		t.Errorf("a sync naming objects ran the access phase (%d calls)", len(calls))
	}
}
