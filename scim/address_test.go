package scim_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
)

// addressFields walks the string fields of Address by reflection, so that a field added to the
// model without being checked, trimmed and listed fails here: it yields each field's SCIM name
// (addresses.<json name>) and a setter.
func addressFields(t *testing.T) map[string]func(*scim.Address, string) {
	t.Helper()
	fs := map[string]func(*scim.Address, string){}
	rt := reflect.TypeFor[scim.Address]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Type.Kind() != reflect.String {
			t.Fatalf("Address.%s: got kind %s, want string", f.Name, f.Type.Kind())
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fs["addresses."+name] = func(a *scim.Address, v string) { reflect.ValueOf(a).Elem().Field(i).SetString(v) }
	}
	return fs
}

func addressUser(a *scim.Address) scim.User {
	return scim.User{ExternalID: "u1", UserName: "ada@example.com", DisplayName: "Ada", GivenName: "Ada",
		FamilyName: "Lovelace", Active: true, Address: a}
}

// TestAddressFieldsAreTrimmedCheckedAndListed: every attribute of the address is trimmed by
// Normalize, checked (a bad value drops the user naming addresses.<name>), and listed by
// Attributes under its SCIM name.
func TestAddressFieldsAreTrimmedCheckedAndListed(t *testing.T) {
	fields := addressFields(t)
	if len(fields) != 7 {
		t.Fatalf("address fields: got %d, want 7", len(fields))
	}
	for name, set := range fields {
		t.Run(name, func(t *testing.T) {
			var a scim.Address
			set(&a, "  value  ")
			s := scim.Normalize(scim.Snapshot{Users: []scim.User{addressUser(&a)}})
			if len(s.Users) != 1 || s.Users[0].Address == nil {
				t.Fatalf("Normalize: got %+v, want the user with an address", s)
			}
			var want scim.Address
			set(&want, "value")
			if got := *s.Users[0].Address; got != want {
				t.Errorf("trimmed address: got %+v, want %+v", got, want)
			}

			var listed []string
			for _, at := range s.Users[0].Attributes() {
				if strings.HasPrefix(at.Name, "addresses.") && at.Value != "" {
					listed = append(listed, at.Name+"="+at.Value)
				}
			}
			if len(listed) != 1 || listed[0] != name+"=value" {
				t.Errorf("Attributes: got %v, want [%s=value]", listed, name)
			}

			var bad scim.Address
			set(&bad, "a\x01b")
			s = scim.Normalize(scim.Snapshot{Users: []scim.User{addressUser(&bad)}})
			if len(s.Users) != 0 || len(s.Skipped) != 1 || s.Skipped[0].Field != name || !s.Skipped[0].Dropped {
				t.Errorf("control character: got users %d, skipped %+v; want the user dropped naming %s", len(s.Users), s.Skipped, name)
			}
			set(&bad, strings.Repeat("x", scim.MaxAttributeLen+1))
			if err := addressUser(&bad).Check(); err == nil || !strings.Contains(err.Error(), "field "+name+":") {
				t.Errorf("too long: got %v, want an error naming %s", err, name)
			}
		})
	}
	s := scim.Normalize(scim.Snapshot{Users: []scim.User{addressUser(&scim.Address{Locality: "  ", Type: " "})}})
	if len(s.Users) != 1 || s.Users[0].Address != nil {
		t.Errorf("blank address: got %+v, want the user without an address", s.Users)
	}
}
