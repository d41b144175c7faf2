package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/connectors"
)

func TestProblems(t *testing.T) {
	good := &connectors.Directory{
		Users:  []connectors.Entry{{ID: "u1", Keys: []string{"uid=u1"}, Attributes: map[string][]string{"mail": {"a@b"}}}},
		Groups: []connectors.Entry{{ID: "g1", Attributes: map[string][]string{}, Members: []string{"UID=U1"}}},
	}
	if p := Problems(good); len(p) != 0 {
		t.Errorf("Problems(good) = %v", p)
	}
	if u := UnresolvedMembers(good); len(u) != 0 {
		t.Errorf("UnresolvedMembers(good) = %v", u)
	}
	bad := &connectors.Directory{
		Users: []connectors.Entry{
			{ID: "", Attributes: map[string][]string{}},
			{ID: " u2", Attributes: map[string][]string{"": {"x"}}},
			{ID: "dup", Keys: []string{""}, Attributes: map[string][]string{"a": nil}, Members: []string{"x"}},
		},
		Groups: []connectors.Entry{{ID: "dup", Members: []string{"dup", "ghost"}}},
	}
	got := fmt.Sprint(Problems(bad))
	for _, want := range []string{"user[0] has an empty id", "surrounding white space", "empty name", `attribute "a" has a nil value list`,
		"empty key", `user "dup" has members`, `group "dup": id already used by a user`, "lists itself"} {
		if !strings.Contains(got, want) {
			t.Errorf("Problems lack %q: %s", want, got)
		}
	}
	if u := UnresolvedMembers(bad); len(u["dup"]) != 1 || u["dup"][0] != "ghost" {
		t.Errorf("UnresolvedMembers = %v", u)
	}
	if p := Problems(nil); len(p) != 1 {
		t.Errorf("Problems(nil) = %v", p)
	}
}

type fakeSource struct {
	reads int
	err   error
}

func (f *fakeSource) Read(context.Context) (*connectors.Directory, error) {
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	// Nondeterministic: each read names the user differently.
	return &connectors.Directory{Users: []connectors.Entry{{ID: fmt.Sprintf("u%d", f.reads), Attributes: map[string][]string{}}}}, nil
}

func (f *fakeSource) Close() error { return nil }

// recorder is a testing.TB that records failures instead of failing the test.
type recorder struct {
	testing.TB
	errors []string
	fatal  bool
}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.errors = append(r.errors, fmt.Sprintf(f, a...)) }
func (r *recorder) Error(a ...any)            { r.errors = append(r.errors, fmt.Sprint(a...)) }
func (r *recorder) Fatalf(f string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(f, a...))
	r.fatal = true
	panic(r)
}

func check(src connectors.Source) (r *recorder) {
	r = &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	CheckSource(r, src)
	return r
}

func TestCheckSourceCatches(t *testing.T) {
	r := check(&fakeSource{})
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "two reads of an unchanged source differ") {
		t.Errorf("nondeterministic source: %v", r.errors)
	}
	r = check(&fakeSource{err: errors.New("boom")})
	if !r.fatal || !strings.Contains(r.errors[0], "boom") {
		t.Errorf("failing source: %v", r.errors)
	}
}
