package google

import (
	"context"
	"sync"
)

// semaphore bounds the requests in flight. Waiters marked urgent go first: the users and
// groups listings are chains of pages that can only be fetched one after the other, so
// letting them jump the queue of member lists keeps them off the critical path.
type semaphore struct {
	mu     sync.Mutex
	free   int
	urgent []chan struct{}
	normal []chan struct{}
}

func newSemaphore(n int) *semaphore { return &semaphore{free: n} }

// acquire takes a slot, waiting until one is free or ctx ends.
func (s *semaphore) acquire(ctx context.Context, urgent bool) error {
	s.mu.Lock()
	if s.free > 0 && len(s.urgent) == 0 && len(s.normal) == 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	if urgent {
		s.urgent = append(s.urgent, ch)
	} else {
		s.normal = append(s.normal, ch)
	}
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-ch: // granted meanwhile: hand the slot on
			s.releaseLocked()
		default:
			s.urgent = remove(s.urgent, ch)
			s.normal = remove(s.normal, ch)
		}
		return context.Cause(ctx)
	}
}

// release frees a slot, handing it to the first urgent waiter, else the first other one.
func (s *semaphore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked()
}

func (s *semaphore) releaseLocked() {
	switch {
	case len(s.urgent) > 0:
		close(s.urgent[0])
		s.urgent = s.urgent[1:]
	case len(s.normal) > 0:
		close(s.normal[0])
		s.normal = s.normal[1:]
	default:
		s.free++
	}
}

// held returns the slots in use (for tests).
func (s *semaphore) held(capacity int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return capacity - s.free
}

func remove(q []chan struct{}, ch chan struct{}) []chan struct{} {
	for i, c := range q {
		if c == ch {
			return append(q[:i], q[i+1:]...)
		}
	}
	return q
}

type urgentKey struct{}

// urgent marks ctx's requests as going before member lists when slots are scarce.
func urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

func isUrgent(ctx context.Context) bool { v, _ := ctx.Value(urgentKey{}).(bool); return v }
