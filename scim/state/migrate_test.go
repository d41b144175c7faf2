package state

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
)

// TestConcurrentOpensOfANewFile opens one new state file from several stores at once, as a dry run
// and a sync (or check and serve) started together do: every open succeeds, and the schema is
// applied once.
func TestConcurrentOpensOfANewFile(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "state.db")
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(context.Background(), path)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, open %d: %v", round, i, err)
			}
		}
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.IntegrityCheck(context.Background()); err != nil {
			t.Error(err)
		}
		s.Close()
	}
}
