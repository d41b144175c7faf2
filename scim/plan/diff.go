package plan

import (
	"strconv"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

// diffUser lists the attributes in which the target's user differs from the desired one. The
// target's manager is a target id, translated through extByTargetID to the source id the desired
// user names. A type sub-attribute left empty in the source equals "work", which is what the
// client writes in its place.
func diffUser(have, want scim.User, extByTargetID map[string]string) []Field {
	if m := have.Enterprise.Manager; m != "" {
		if ext, ok := extByTargetID[m]; ok {
			have.Enterprise.Manager = ext
		}
	}
	if sameUser(have, want) {
		return nil // the common case, without allocating
	}
	if want.Email == "" {
		want.EmailType = ""
	}
	if want.PhoneNumber == "" {
		want.PhoneType = ""
	}
	var fields []Field
	ha, wa := have.Attributes(), want.Attributes()
	for i := range wa {
		from, to := ha[i].Value, wa[i].Value
		if from == to || (strings.HasSuffix(wa[i].Name, ".type") && sameType(from, to, want, wa[i].Name)) {
			continue
		}
		fields = append(fields, Field{Name: wa[i].Name, From: from, To: to})
	}
	if have.Active != want.Active {
		fields = append(fields, Field{Name: "active", From: strconv.FormatBool(have.Active), To: strconv.FormatBool(want.Active)})
	}
	return fields
}

// sameType reports whether a type sub-attribute is unchanged, counting an empty desired type as
// the "work" the client sends when the multi-valued attribute it qualifies is present.
func sameType(from, to string, want scim.User, name string) bool {
	if to != "" || !strings.EqualFold(from, "work") {
		return false
	}
	switch name {
	case "emails.type":
		return want.Email != ""
	case "phoneNumbers.type":
		return want.PhoneNumber != ""
	case "addresses.type":
		return want.Address != nil
	}
	return false
}

// sameUser reports whether two users are equal attribute by attribute (the address by value).
func sameUser(a, b scim.User) bool {
	aa, ba := a.Address, b.Address
	a.Address, b.Address = nil, nil
	if a != b {
		return false
	}
	switch {
	case aa == nil || ba == nil:
		return aa == ba
	default:
		return *aa == *ba
	}
}
