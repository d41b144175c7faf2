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

// normalized returns u with white space trimmed from every attribute, and no address when
// every part of it is empty. u's address is copied, never written through.
func (u User) normalized() User {
	if u.Address != nil {
		a := *u.Address
		u.Address = &a
	}
	for i := range userAttributes {
		if a := &userAttributes[i]; !a.Bool {
			a.Set(&u, strings.TrimSpace(a.Get(&u)))
		}
	}
	if u.Address != nil && *u.Address == (Address{}) {
		u.Address = nil
	}
	return u
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
	// The address is checked last, after the rules that read other attributes.
	for i := range userAttributes {
		if a := &userAttributes[i]; !a.Bool && !a.Address {
			if reason := checkString(a.Get(&u), a.Required, a.Max); reason != "" {
				return bad(a.Path, reason)
			}
		}
	}
	if strings.IndexFunc(u.UserName, unicode.IsSpace) >= 0 {
		return bad("userName", "must not contain white space")
	}
	if u.Email != "" && !plausibleEmail(u.Email) {
		return bad("emails", fmt.Sprintf("%s is not an email address", quote(u.Email)))
	}
	if u.Address != nil {
		for i := range userAttributes {
			if a := &userAttributes[i]; a.Address {
				if reason := checkString(a.Get(&u), a.Required, a.Max); reason != "" {
					return bad(a.Path, reason)
				}
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

// Attributes lists every string attribute of u by its SCIM path, in a fixed order (that of
// UserAttributes, with the address flattened into addresses.* names at the end). The externalId
// is included; active is not.
func (u User) Attributes() []Attribute {
	out := make([]Attribute, 0, len(userAttributes))
	for _, address := range []bool{false, true} {
		for i := range userAttributes {
			if a := &userAttributes[i]; !a.Bool && a.Address == address {
				out = append(out, Attribute{a.Path, a.Get(&u)})
			}
		}
	}
	return out
}
