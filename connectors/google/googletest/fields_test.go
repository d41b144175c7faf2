package googletest

import (
	"encoding/json"
	"testing"
)

func TestFieldSelection(t *testing.T) {
	const doc = `{"kind":"k","nextPageToken":"p","users":[{"id":"1","primaryEmail":"a@x","name":{"givenName":"A","familyName":"B"},"isAdmin":true}]}`
	tests := []struct{ fields, want string }{
		{"nextPageToken,users(id,name)", `{"nextPageToken":"p","users":[{"id":"1","name":{"familyName":"B","givenName":"A"}}]}`},
		{"users(name(givenName),primaryEmail)", `{"users":[{"name":{"givenName":"A"},"primaryEmail":"a@x"}]}`},
		{"kind", `{"kind":"k"}`},
	}
	for _, tc := range tests {
		sel, err := parseFields(tc.fields)
		if err != nil {
			t.Fatalf("parseFields(%q): %v", tc.fields, err)
		}
		var v any
		_ = json.Unmarshal([]byte(doc), &v)
		got, _ := json.Marshal(sel.apply(v))
		if string(got) != tc.want {
			t.Errorf("fields %q: got %s, want %s", tc.fields, got, tc.want)
		}
	}
	for _, bad := range []string{"", "users(id", "a,,b", "users/id", "a)b"} {
		if _, err := parseFields(bad); err == nil {
			t.Errorf("parseFields(%q) accepted a bad mask", bad)
		}
	}
}
