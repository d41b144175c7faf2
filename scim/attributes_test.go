package scim

import (
	"fmt"
	"testing"
)

// TestUserAttributesGetSet writes a distinct value through every row's Set and reads it back
// through Get and Attributes: a row that reads or writes another row's field fails.
func TestUserAttributesGetSet(t *testing.T) {
	var u User
	want := map[string]string{}
	for i, a := range UserAttributes() {
		if a.Bool {
			continue
		}
		v := fmt.Sprintf("v%d", i)
		a.Set(&u, v)
		want[a.Path] = v
	}
	for _, a := range UserAttributes() {
		if a.Bool {
			continue
		}
		if got := a.Get(&u); got != want[a.Path] {
			t.Errorf("%s: Get = %q, want %q", a.Path, got, want[a.Path])
		}
	}
	attrs := u.Attributes()
	if got, want := len(attrs), len(want); got != want {
		t.Fatalf("Attributes lists %d attributes, want %d", got, want)
	}
	for _, a := range attrs {
		if a.Value != want[a.Name] {
			t.Errorf("Attributes: %s = %q, want %q", a.Name, a.Value, want[a.Name])
		}
	}
}

func TestLookupUserAttribute(t *testing.T) {
	for _, c := range []struct {
		name, key  string
		deprecated bool
	}{
		{"email", "email", false},
		{"Email", "email", false},
		{"emails", "email", true},
		{"phone", "phoneNumber", true},
		{"phoneNumbers", "phoneNumber", true},
		{"phoneNumber", "phoneNumber", false},
		{"address.streetAddress", "address.streetAddress", false},
		{"addresses.streetAddress", "address.streetAddress", true},
		{"manager", "manager", false},
		{"active", "active", false},
	} {
		a, deprecated, ok := LookupUserAttribute(c.name)
		if !ok || a.Key != c.key || deprecated != c.deprecated {
			t.Errorf("LookupUserAttribute(%q) = %q, deprecated %t, ok %t; want %q, deprecated %t, ok true", c.name, a.Key, deprecated, ok, c.key, c.deprecated)
		}
	}
	for _, name := range []string{"", "externalId", "nosuch", "address.", "addresses"} {
		if a, _, ok := LookupUserAttribute(name); ok {
			t.Errorf("LookupUserAttribute(%q) = %q, want not found", name, a.Key)
		}
	}
}
