package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/state"
)

// flushEvery is how often the recorder commits what the applier did. Between commits a crash can
// lose the record of a few writes; the pending intents recorded before every create make the next
// run find those objects again, and the other writes are idempotent.
const flushEvery = 250 * time.Millisecond

// flushAt commits at once when this many changes are waiting.
const flushAt = 2000

// recorder batches the state writes of an apply so that a large run does not pay one SQLite
// commit per request. Changes are committed in the order puts, forgets, pending clears, member
// adds, member removes, which keeps every write valid (a group is owned before its members are).
type recorder struct {
	st  state.Store
	now func() time.Time

	mu      sync.Mutex
	puts    []state.Object
	forgets map[state.Kind][]string
	clears  map[state.Kind][]string
	adds    map[string][]string
	removes map[string][]string
	n       int
	err     error

	flushMu sync.Mutex
	kick    chan struct{}
	quit    chan struct{}
	wg      sync.WaitGroup
}

func newRecorder(st state.Store, now func() time.Time) *recorder {
	r := &recorder{st: st, now: now, kick: make(chan struct{}, 1), quit: make(chan struct{})}
	r.reset()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-r.quit:
				return
			case <-t.C:
			case <-r.kick:
			}
			if err := r.flush(context.Background()); err != nil {
				r.mu.Lock()
				r.err = errors.Join(r.err, err) // reported by the final flush
				r.mu.Unlock()
			}
		}
	}()
	return r
}

func (r *recorder) reset() {
	r.puts = nil
	r.forgets = map[state.Kind][]string{}
	r.clears = map[state.Kind][]string{}
	r.adds = map[string][]string{}
	r.removes = map[string][]string{}
	r.n = 0
}

func (r *recorder) close() {
	close(r.quit)
	r.wg.Wait()
}

func (r *recorder) queued(n int) {
	r.n += n
	if r.n >= flushAt {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *recorder) putUser(id string, u scim.User) {
	obj, err := state.NewUserObject(id, u, r.now())
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.err = errors.Join(r.err, err)
		return
	}
	r.puts = append(r.puts, obj)
	r.queued(1)
}

func (r *recorder) putGroup(id string, g scim.Group) {
	obj, err := state.NewGroupObject(id, g, r.now())
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.err = errors.Join(r.err, err)
		return
	}
	r.puts = append(r.puts, obj)
	r.queued(1)
}

func (r *recorder) forget(kind, ext string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgets[state.Kind(kind)] = append(r.forgets[state.Kind(kind)], ext)
	r.queued(1)
}

func (r *recorder) clearPending(kind, ext string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clears[state.Kind(kind)] = append(r.clears[state.Kind(kind)], ext)
	r.queued(1)
}

func (r *recorder) addMembers(group string, users []string) {
	users = slices.DeleteFunc(slices.Clone(users), func(s string) bool { return s == "" })
	if len(users) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.adds[group] = append(r.adds[group], users...)
	r.queued(len(users))
}

func (r *recorder) removeMembers(group string, users []string) {
	users = slices.DeleteFunc(slices.Clone(users), func(s string) bool { return s == "" })
	if len(users) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removes[group] = append(r.removes[group], users...)
	r.queued(len(users))
}

// flush commits everything queued so far. Flushes run one at a time, in order.
func (r *recorder) flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	puts, forgets, clears, adds, removes, prev := r.puts, r.forgets, r.clears, r.adds, r.removes, r.err
	r.reset()
	r.err = nil
	r.mu.Unlock()

	errs := []error{prev}
	if len(puts) > 0 {
		if err := r.st.PutObjects(ctx, puts); err != nil {
			errs = append(errs, fmt.Errorf("record %d objects: %w", len(puts), err))
		}
	}
	for kind, exts := range forgets {
		if err := r.st.DeleteObjects(ctx, kind, exts); err != nil {
			errs = append(errs, fmt.Errorf("forget %d %ss: %w", len(exts), kind, err))
		}
	}
	for kind, exts := range clears {
		if err := r.st.ClearPending(ctx, kind, exts); err != nil {
			errs = append(errs, fmt.Errorf("clear %d pending %ss: %w", len(exts), kind, err))
		}
	}
	var ms []state.Membership
	for g, users := range adds {
		for _, u := range users {
			ms = append(ms, state.Membership{Group: g, User: u})
		}
	}
	if len(ms) > 0 {
		if err := r.st.AddMemberships(ctx, ms); err != nil {
			errs = append(errs, fmt.Errorf("record %d memberships: %w", len(ms), err))
		}
	}
	for g, users := range removes {
		if err := r.st.RemoveMembers(ctx, g, users); err != nil {
			errs = append(errs, fmt.Errorf("forget %d memberships of %q: %w", len(users), g, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reconcile: state: %w", err)
	}
	return nil
}
