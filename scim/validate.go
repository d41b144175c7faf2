package scim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the Identity Center identity store that a record must respect to be sent.
const (
	MaxUserNameLen   = 128
	MaxExternalIDLen = 256
	MaxAttributeLen  = 1024
)

// Kinds of record named in a Problem.
const (
	KindUser  = "user"
	KindGroup = "group"
)

// Normalize cleans a desired snapshot and checks it against the Identity Center rules, record by
// record. It trims surrounding white space, sorts users, groups and members, and drops every record
// that cannot be sent (reporting it in Skipped with its source id and field): missing required
// values, invalid UTF-8 or control characters, values over the limits, and duplicate externalIds,
// userNames, emails or group displayNames (the record with the smallest externalId keeps the value).
// Memberships that name a user outside the snapshot are dropped and reported; the group stays.
// The rest always goes on: one bad record never stops the others.
func Normalize(s Snapshot) Snapshot {
	out := Snapshot{Skipped: slices.Clone(s.Skipped)}
	out.Users = make([]User, 0, len(s.Users))
	out.Groups = make([]Group, 0, len(s.Groups))
	users := slices.Clone(s.Users)
	slices.SortStableFunc(users, func(a, b User) int { return cmp.Compare(a.ExternalID, b.ExternalID) })

	skippedUser := map[string]bool{}
	for _, p := range s.Skipped {
		if p.Kind == KindUser && p.Dropped {
			skippedUser[p.ID] = true
		}
	}
	seenID := make(map[string]bool, len(users))   // every id met, to spot duplicates
	accepted := make(map[string]bool, len(users)) // ids of users kept in the snapshot
	seenName := make(map[string]string, len(users))
	seenEmail := make(map[string]string, len(users))
	for _, u := range users {
		u = u.normalized()
		if p, bad := u.check(); bad {
			out.Skipped = append(out.Skipped, p)
			skippedUser[u.ExternalID] = true
			continue
		}
		if seenID[u.ExternalID] {
			out.Skipped = append(out.Skipped, Problem{Kind: KindUser, ID: u.ExternalID, Field: "externalId", Reason: "duplicate id in the source", Dropped: true})
			continue
		}
		seenID[u.ExternalID] = true
		name := strings.ToLower(u.UserName)
		if other, dup := seenName[name]; dup {
			out.Skipped = append(out.Skipped, Problem{Kind: KindUser, ID: u.ExternalID, Field: "userName", Reason: fmt.Sprintf("userName %s is already used by %s", quote(u.UserName), quote(other)), Dropped: true})
			skippedUser[u.ExternalID] = true
			continue
		}
		if u.Email != "" {
			email := strings.ToLower(u.Email)
			if other, dup := seenEmail[email]; dup {
				out.Skipped = append(out.Skipped, Problem{Kind: KindUser, ID: u.ExternalID, Field: "emails", Reason: fmt.Sprintf("email %s is already used by %s", quote(u.Email), quote(other)), Dropped: true})
				skippedUser[u.ExternalID] = true
				continue
			}
			seenEmail[email] = u.ExternalID
		}
		seenName[name] = u.ExternalID
		accepted[u.ExternalID] = true
		out.Users = append(out.Users, u)
	}
	// A manager must be another user of the snapshot.
	for i := range out.Users {
		u := &out.Users[i]
		if m := u.Enterprise.Manager; m != "" && (!accepted[m] || m == u.ExternalID) {
			out.Skipped = append(out.Skipped, Problem{Kind: KindUser, ID: u.ExternalID, Field: "manager", Reason: fmt.Sprintf("manager %s is not a user of this sync; left unset", quote(m))})
			u.Enterprise.Manager = ""
		}
	}

	groups := slices.Clone(s.Groups)
	slices.SortStableFunc(groups, func(a, b Group) int { return cmp.Compare(a.ExternalID, b.ExternalID) })
	seenGroup := map[string]bool{}
	seenDisplay := map[string]string{}
	for _, g := range groups {
		g.ExternalID = strings.TrimSpace(g.ExternalID)
		g.DisplayName = strings.TrimSpace(g.DisplayName)
		if p, bad := checkGroup(g); bad {
			out.Skipped = append(out.Skipped, p)
			continue
		}
		if seenGroup[g.ExternalID] {
			out.Skipped = append(out.Skipped, Problem{Kind: KindGroup, ID: g.ExternalID, Field: "externalId", Reason: "duplicate id in the source", Dropped: true})
			continue
		}
		seenGroup[g.ExternalID] = true
		name := strings.ToLower(g.DisplayName)
		if other, dup := seenDisplay[name]; dup {
			out.Skipped = append(out.Skipped, Problem{Kind: KindGroup, ID: g.ExternalID, Field: "displayName", Reason: fmt.Sprintf("displayName %s is already used by %s", quote(g.DisplayName), quote(other)), Dropped: true})
			continue
		}
		seenDisplay[name] = g.ExternalID
		members := make([]string, 0, len(g.Members))
		var unknown []string
		for _, m := range g.Members {
			switch {
			case accepted[m]:
				members = append(members, m)
			case skippedUser[m]:
				// The user exists in the source but cannot be sent: its membership is left as it is.
			default:
				unknown = append(unknown, m)
			}
		}
		slices.Sort(members)
		g.Members = slices.Compact(members)
		if len(unknown) > 0 {
			slices.Sort(unknown)
			unknown = slices.Compact(unknown)
			out.Skipped = append(out.Skipped, Problem{Kind: KindGroup, ID: g.ExternalID, Field: "members", Reason: fmt.Sprintf("%d member(s) are not users of this sync and were left out (first: %s)", len(unknown), quote(unknown[0]))})
		}
		out.Groups = append(out.Groups, g)
	}
	slices.SortStableFunc(out.Skipped, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Field, b.Field))
	})
	return out
}

// SkippedIDs returns the source ids of the records of a kind that were dropped as a whole.
func (s Snapshot) SkippedIDs(kind string) map[string]bool {
	ids := map[string]bool{}
	for _, p := range s.Skipped {
		if p.Kind == kind && p.Dropped {
			ids[p.ID] = true
		}
	}
	return ids
}

// normalized returns u with white space trimmed from every attribute.
func (u User) normalized() User {
	for _, f := range u.fields() {
		*f.ptr = strings.TrimSpace(*f.ptr)
	}
	if u.Address != nil {
		a := *u.Address
		for _, f := range a.fields() {
			*f.ptr = strings.TrimSpace(*f.ptr)
		}
		if a == (Address{}) {
			u.Address = nil
		} else {
			u.Address = &a
		}
	}
	return u
}

type userField struct {
	name     string
	ptr      *string
	required bool
	max      int
}

// fields lists u's string attributes by their SCIM names; the pointers write into u.
// numFields is the number of string attributes fields lists.
const numFields = 25

// fields lists u's string attributes; it returns an array so that the common loops over it do
// not allocate (Normalize runs it for every user of the directory).
func (u *User) fields() [numFields]userField {
	return [numFields]userField{
		{"externalId", &u.ExternalID, true, MaxExternalIDLen},
		{"userName", &u.UserName, true, MaxUserNameLen},
		{"displayName", &u.DisplayName, true, MaxAttributeLen},
		{"name.givenName", &u.GivenName, true, MaxAttributeLen},
		{"name.familyName", &u.FamilyName, true, MaxAttributeLen},
		{"name.middleName", &u.MiddleName, false, MaxAttributeLen},
		{"name.honorificPrefix", &u.HonorificPrefix, false, MaxAttributeLen},
		{"name.honorificSuffix", &u.HonorificSuffix, false, MaxAttributeLen},
		{"nickName", &u.NickName, false, MaxAttributeLen},
		{"profileUrl", &u.ProfileURL, false, MaxAttributeLen},
		{"title", &u.Title, false, MaxAttributeLen},
		{"userType", &u.UserType, false, MaxAttributeLen},
		{"preferredLanguage", &u.PreferredLanguage, false, MaxAttributeLen},
		{"locale", &u.Locale, false, MaxAttributeLen},
		{"timezone", &u.Timezone, false, MaxAttributeLen},
		{"emails", &u.Email, false, MaxAttributeLen},
		{"emails.type", &u.EmailType, false, MaxAttributeLen},
		{"phoneNumbers", &u.PhoneNumber, false, MaxAttributeLen},
		{"phoneNumbers.type", &u.PhoneType, false, MaxAttributeLen},
		{"employeeNumber", &u.Enterprise.EmployeeNumber, false, MaxAttributeLen},
		{"costCenter", &u.Enterprise.CostCenter, false, MaxAttributeLen},
		{"organization", &u.Enterprise.Organization, false, MaxAttributeLen},
		{"division", &u.Enterprise.Division, false, MaxAttributeLen},
		{"department", &u.Enterprise.Department, false, MaxAttributeLen},
		{"manager", &u.Enterprise.Manager, false, MaxExternalIDLen},
	}
}

// addressPrefix is the SCIM path of the address, which Identity Center keeps as the one value of
// the multi-valued addresses attribute.
const addressPrefix = "addresses."

// numAddressFields is the number of attributes Address.fields lists.
const numAddressFields = 7

// fields lists a's attributes by their SCIM sub-attribute names, in a fixed order; the pointers
// write into a. Normalize, check and Attributes all walk this one list.
func (a *Address) fields() [numAddressFields]userField {
	return [numAddressFields]userField{
		{"formatted", &a.Formatted, false, MaxAttributeLen},
		{"streetAddress", &a.StreetAddress, false, MaxAttributeLen},
		{"locality", &a.Locality, false, MaxAttributeLen},
		{"region", &a.Region, false, MaxAttributeLen},
		{"postalCode", &a.PostalCode, false, MaxAttributeLen},
		{"country", &a.Country, false, MaxAttributeLen},
		{"type", &a.Type, false, MaxAttributeLen},
	}
}

// Check reports the first reason u cannot be sent to Identity Center, if any.
func (u User) Check() error {
	if p, bad := u.normalized().check(); bad {
		return p
	}
	return nil
}

func (u User) check() (Problem, bool) {
	bad := func(field, reason string) (Problem, bool) {
		return Problem{Kind: KindUser, ID: u.ExternalID, Field: field, Reason: reason, Dropped: true}, true
	}
	for _, f := range u.fields() {
		if reason := checkString(*f.ptr, f.required, f.max); reason != "" {
			return bad(f.name, reason)
		}
	}
	if strings.IndexFunc(u.UserName, unicode.IsSpace) >= 0 {
		return bad("userName", "must not contain white space")
	}
	if u.Email != "" && !plausibleEmail(u.Email) {
		return bad("emails", fmt.Sprintf("%s is not an email address", quote(u.Email)))
	}
	if u.Address != nil {
		a := *u.Address
		for _, f := range a.fields() {
			if reason := checkString(*f.ptr, f.required, f.max); reason != "" {
				return bad(addressPrefix+f.name, reason)
			}
		}
	}
	return Problem{}, false
}

func checkGroup(g Group) (Problem, bool) {
	bad := func(field, reason string) (Problem, bool) {
		return Problem{Kind: KindGroup, ID: g.ExternalID, Field: field, Reason: reason, Dropped: true}, true
	}
	if reason := checkString(g.ExternalID, true, MaxExternalIDLen); reason != "" {
		return bad("externalId", reason)
	}
	if reason := checkString(g.DisplayName, true, MaxAttributeLen); reason != "" {
		return bad("displayName", reason)
	}
	return Problem{}, false
}

// checkString returns why v cannot be sent, or "".
func checkString(v string, required bool, max int) string {
	switch {
	case v == "" && required:
		return "is required"
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case utf8.RuneCountInString(v) > max:
		return fmt.Sprintf("is %d characters long; at most %d are allowed", utf8.RuneCountInString(v), max)
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }); i >= 0 {
		return fmt.Sprintf("contains the control character %U", []rune(v[i:])[0])
	}
	return ""
}

func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && strings.IndexFunc(s, unicode.IsSpace) < 0
}

// Attribute is one string attribute of a user, by its SCIM name.
type Attribute struct {
	Name  string
	Value string
}

// Attributes lists every string attribute of u by its SCIM name, in a fixed order, with the
// address flattened into addresses.* names. The externalId is included; active is not.
func (u User) Attributes() []Attribute {
	fs := u.fields()
	out := make([]Attribute, 0, numFields+numAddressFields)
	for _, f := range fs {
		out = append(out, Attribute{f.name, *f.ptr})
	}
	var a Address
	if u.Address != nil {
		a = *u.Address
	}
	for _, f := range a.fields() {
		out = append(out, Attribute{addressPrefix + f.name, *f.ptr})
	}
	return out
}
