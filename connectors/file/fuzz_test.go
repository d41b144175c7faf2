package file_test

import (
	"errors"
	"testing"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/file"
)

// FuzzParse feeds arbitrary bytes to the directory file parser: it must never panic, fail only
// with errors wrapping ErrInvalid, and return only directories whose entries have a unique,
// non-empty id. Run: go test -fuzz FuzzParse -fuzztime 2m ./connectors/file/
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"users:\n  - {id: u1, userName: a@example.com, givenName: A, familyName: B}\ngroups:\n  - {id: g1, name: G, members: [u1, g1]}\n",
		"users: []\ngroups: []\n",
		"",
		"users: {a: 1}\n",
		"users:\n  - &a {id: x, userName: y}\n  - *a\n",
		"users:\n  - id: u1\n    attributes: {badge: [1, 2], nested: {a: b}}\n",
		"groups:\n  - {id: g, members: [g, g, g]}\n  - {id: g}\n",
		"users:\n  - {id: \"\\x00\", userName: \"\\xff\"}\n",
		"users:\n  - id: u1\n    suspended: maybe\n    active: yes\n",
		"a: &a [*a]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := file.Parse(data)
		if err != nil {
			if !errors.Is(err, file.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if d != nil {
				t.Fatalf("a failed parse returned a directory")
			}
			return
		}
		if d == nil {
			t.Fatal("nil directory without an error")
		}
		for kind, entries := range map[string][]connectors.Entry{"user": d.Users, "group": d.Groups} {
			seen := map[string]bool{}
			for _, e := range entries {
				if e.ID == "" {
					t.Fatalf("a %s without an id", kind)
				}
				if seen[e.ID] {
					t.Fatalf("duplicate %s id %q passed", kind, e.ID)
				}
				seen[e.ID] = true
			}
		}
	})
}
