package state

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
)

// TestFencing: two stores on one location stand for an old leader and a new one. Once the new
// one begins a term, every kind of write of the old one fails with ErrFenced and writes nothing,
// while the new leader writes on.
func TestFencing(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, loc string) {
		old, next := openStore(t, loc), openStore(t, loc)
		if got, err := old.Leader(ctx); err != nil || got != (Term{}) {
			t.Fatalf("Leader of a new store: got %+v, %v; want term 0", got, err)
		}
		term1, err := old.BeginTerm(ctx, "replica-a", t0)
		must(t, err)
		old.Fence(term1)
		must(t, old.PutObjects(ctx, []Object{mustGroup(t, "tg", scim.Group{ExternalID: "g", DisplayName: "G"}, t0)}))

		term2, err := next.BeginTerm(ctx, "replica-b", t0.Add(time.Minute))
		must(t, err)
		if term2 != term1+1 {
			t.Errorf("second term: got %d, want %d", term2, term1+1)
		}
		if got, err := old.Leader(ctx); err != nil || got != (Term{Term: term2, Holder: "replica-b", AcquiredAt: t0.Add(time.Minute)}) {
			t.Errorf("Leader: got %+v, %v; want term %d of replica-b", got, err, term2)
		}
		next.Fence(term2)

		before, err := old.Export(ctx)
		must(t, err)
		user := mustUser(t, "tu", scim.User{ExternalID: "u", UserName: "u"}, t0)
		writes := map[string]func() error{
			"RecordPending":        func() error { return old.RecordPending(ctx, KindUser, []string{"u"}, t0) },
			"ClearPending":         func() error { return old.ClearPending(ctx, KindUser, []string{"u"}) },
			"PutObjects":           func() error { return old.PutObjects(ctx, []Object{user}) },
			"DeleteObjects":        func() error { return old.DeleteObjects(ctx, KindGroup, []string{"g"}) },
			"AddMembers":           func() error { return old.AddMembers(ctx, "g", []string{"u"}) },
			"AddMemberships":       func() error { return old.AddMemberships(ctx, []Membership{{"g", "u"}}) },
			"RemoveMembers":        func() error { return old.RemoveMembers(ctx, "g", []string{"u"}) },
			"SetMembers":           func() error { return old.SetMembers(ctx, "g", []string{"u"}) },
			"RemoveUserEverywhere": func() error { return old.RemoveUserEverywhere(ctx, "u") },
			"SetMeta":              func() error { return old.SetMeta(ctx, "k", "v") },
			"DeleteMeta":           func() error { return old.DeleteMeta(ctx, "k") },
			"StartRun":             func() error { _, err := old.StartRun(ctx, "cli", false, t0); return err },
			"FinishRun":            func() error { return old.FinishRun(ctx, 1, ResultSuccess, Counts{}, nil, "", t0) },
			"ReplaceUnowned":       func() error { return old.ReplaceUnowned(ctx, nil) },
			"AddUnowned":           func() error { return old.AddUnowned(ctx, []Unowned{{Kind: KindUser, TargetID: "x"}}) },
			"Reset":                func() error { return old.Reset(ctx) },
			"Import":               func() error { return old.Import(ctx, &Dump{}, true) },
		}
		for name, write := range writes {
			err := write()
			var fe *FencedError
			if !errors.Is(err, ErrFenced) || !errors.As(err, &fe) || fe.Term != term1 || fe.Current != term2 || fe.Holder != "replica-b" {
				t.Errorf("%s by the fenced leader: got %v, want ErrFenced naming term %d, %d and replica-b", name, err, term1, term2)
			}
		}
		after, err := old.Export(ctx)
		must(t, err)
		if diff := Diff(before, after); diff != nil {
			t.Errorf("fenced writes changed the store: %v", diff)
		}
		// The new leader writes; unfenced (Fence(0)), so may the old store again.
		must(t, next.PutObjects(ctx, []Object{user}))
		old.Fence(0)
		must(t, old.SetMeta(ctx, "k", "v"))
		if _, err := old.BeginTerm(ctx, "", t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("BeginTerm without a holder: got %v, want ErrInvalid", err)
		}
	})
}

// TestFencingRacesNoWriteThrough runs writers of a fenced leader against a BeginTerm of another:
// each write either commits before the new term (and is seen) or fails with ErrFenced (and is
// not). No write lands after the term changed.
func TestFencingRacesNoWriteThrough(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, loc string) {
		old, next := openStore(t, loc), openStore(t, loc)
		term, err := old.BeginTerm(ctx, "a", t0)
		must(t, err)
		old.Fence(term)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := map[string]bool{}
		start := make(chan struct{})
		for w := range 4 {
			wg.Go(func() {
				<-start
				for i := range 30 {
					id := string(rune('a'+w)) + "-" + string(rune('0'+i/10)) + string(rune('0'+i%10))
					err := old.PutObjects(ctx, []Object{{Kind: KindUser, ExternalID: id, TargetID: "t" + id, Data: json.RawMessage(`{}`), UpdatedAt: t0}})
					switch {
					case err == nil:
						mu.Lock()
						ok[id] = true
						mu.Unlock()
					case !errors.Is(err, ErrFenced):
						t.Errorf("write %s: %v", id, err)
					}
				}
			})
		}
		close(start)
		time.Sleep(5 * time.Millisecond)
		if _, err := next.BeginTerm(ctx, "b", t0); err != nil {
			t.Fatal(err)
		}
		// Writes that begin after the new term committed are all refused.
		if err := old.SetMeta(ctx, "after", "x"); !errors.Is(err, ErrFenced) {
			t.Errorf("write after the new term: got %v, want ErrFenced", err)
		}
		wg.Wait()
		users, err := next.Objects(ctx, KindUser)
		must(t, err)
		got := map[string]bool{}
		for _, o := range users {
			got[o.ExternalID] = true
		}
		if diff := cmp.Diff(ok, got); diff != "" {
			t.Errorf("stored users differ from the writes that returned success (-want +got):\n%s", diff)
		}
	})
}
