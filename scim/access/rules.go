package access

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

// Rule is one assignment rule of the configuration (access.assignments[i]), compiled. Its
// principals are groups named in Groups, groups whose displayName matches GroupPattern as a whole,
// and users named in Users; each gets every permission set of PermissionSets on every account the
// rule selects. A value "$name" in PermissionSets or Accounts stands for the capture group of that
// name in GroupPattern, so one rule such as
//
//	group_pattern: 'AWS-(?P<account>\d{12})-(?P<permission_set>.+)'
//	permission_sets: [$permission_set]
//	accounts: [$account]
//
// turns the group AWS-111122223333-ReadOnly into ReadOnly on account 111122223333.
type Rule struct {
	// Key names the rule in plans and problems: access.assignments[2].
	Key string
	// Groups are group displayNames, matched case-insensitively.
	Groups []string
	// GroupPattern, when set, selects the groups whose whole displayName it matches.
	GroupPattern *regexp.Regexp
	// Users are userNames, matched case-insensitively.
	Users []string
	// PermissionSets are permission set names, or "$capture".
	PermissionSets []string
	// Accounts are account ids, account names, "all" (every active account), "management" (the
	// organization's management account), or "$capture".
	Accounts []string
	// OUs are organizational unit (or root) ids or names; every account below one, at any depth,
	// is selected.
	OUs []string
	// AccountTags selects the accounts that carry every one of these tags with these values.
	AccountTags map[string]string
}

// Keywords of Rule.Accounts: AllAccounts selects every active account of the organization,
// ManagementAccount its management account (whatever its name).
const (
	AllAccounts       = "all"
	ManagementAccount = "management"
)

// Capture returns the capture group name a rule value refers to ("$account" gives "account").
func Capture(v string) (string, bool) {
	name, ok := strings.CutPrefix(v, "$")
	return name, ok && name != ""
}

// PrincipalRef names a principal of a plan: its type, stable source id and name, and its identity
// store id (empty when the principal does not exist in the target yet).
type PrincipalRef struct {
	Type       PrincipalType `json:"type"`
	ExternalID string        `json:"externalId"`
	Name       string        `json:"name"`
	ID         string        `json:"id,omitempty"`
	// Created is set in a dry run for a group or user the same run creates.
	Created bool `json:"created,omitempty"`
}

// Grant is one assignment the rules want: a principal, a permission set by name and an account,
// with the rules that want it.
type Grant struct {
	Principal     PrincipalRef `json:"principal"`
	PermissionSet string       `json:"permissionSet"`
	AccountID     string       `json:"accountId"`
	AccountName   string       `json:"accountName,omitempty"`
	Rules         []string     `json:"rules"`
	// Via names the group the grant reaches a user through, for Explain; empty in plans.
	Via string `json:"via,omitempty"`
}

// Key is the grant's identity: principal type and externalId, permission set name, account id.
func (g Grant) Key() Key {
	return Key{Type: g.Principal.Type, ExternalID: g.Principal.ExternalID, PermissionSet: g.PermissionSet, AccountID: g.AccountID}
}

// Key identifies an assignment across runs: a renamed group keeps its externalId, so its
// assignments keep their keys.
type Key struct {
	Type          PrincipalType `json:"principalType"`
	ExternalID    string        `json:"principalExternalId"`
	PermissionSet string        `json:"permissionSet"`
	AccountID     string        `json:"accountId"`
}

func (k Key) String() string {
	return fmt.Sprintf("%s %s / %s / %s", strings.ToLower(string(k.Type)), k.ExternalID, k.PermissionSet, k.AccountID)
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ExternalID, b.ExternalID),
		cmp.Compare(a.PermissionSet, b.PermissionSet), cmp.Compare(a.AccountID, b.AccountID))
}

// orgIndex looks accounts and units up by id and name.
type orgIndex struct {
	org      *Organization
	byID     map[string]*Account
	byName   map[string][]*Account // lowercased name
	unitByID map[string]OrganizationalUnit
	unitName map[string][]string // lowercased name -> ids
}

func newOrgIndex(org *Organization) *orgIndex {
	if org == nil {
		org = &Organization{}
	}
	x := &orgIndex{org: org, byID: map[string]*Account{}, byName: map[string][]*Account{},
		unitByID: map[string]OrganizationalUnit{}, unitName: map[string][]string{}}
	for i := range org.Accounts {
		a := &org.Accounts[i]
		x.byID[a.ID] = a
		x.byName[strings.ToLower(a.Name)] = append(x.byName[strings.ToLower(a.Name)], a)
	}
	for _, u := range org.Units {
		x.unitByID[u.ID] = u
		x.unitName[strings.ToLower(u.Name)] = append(x.unitName[strings.ToLower(u.Name)], u.ID)
	}
	return x
}

func active(a *Account) bool { return a.Status == "" || a.Status == "ACTIVE" }

// account resolves an account id or name; the error says why none (or more than one) matches.
func (x *orgIndex) account(v string) (*Account, error) {
	if a, ok := x.byID[v]; ok {
		if !active(a) {
			return nil, fmt.Errorf("account %s (%s) is %s; only active accounts get assignments", a.ID, a.Name, a.Status)
		}
		return a, nil
	}
	as := x.byName[strings.ToLower(v)]
	switch {
	case len(as) == 0:
		return nil, fmt.Errorf("no account of the organization has the id or name %q", v)
	case len(as) > 1:
		return nil, fmt.Errorf("%d accounts are named %q (%s, %s); name it by id", len(as), v, as[0].ID, as[1].ID)
	case !active(as[0]):
		return nil, fmt.Errorf("account %s (%s) is %s; only active accounts get assignments", as[0].ID, as[0].Name, as[0].Status)
	}
	return as[0], nil
}

// unit resolves an OU (or root) id or name.
func (x *orgIndex) unit(v string) (string, error) {
	if _, ok := x.unitByID[v]; ok {
		return v, nil
	}
	ids := x.unitName[strings.ToLower(v)]
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no organizational unit has the id or name %q", v)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("%d organizational units are named %q (%s, %s); name it by id", len(ids), v, ids[0], ids[1])
}

// staticAccounts is what a rule selects without its captures: its accounts, OUs and tags.
func (x *orgIndex) staticAccounts(r Rule, problem func(field, reason string)) []*Account {
	seen := map[string]bool{}
	var out []*Account
	add := func(a *Account) {
		if !seen[a.ID] && active(a) {
			seen[a.ID] = true
			out = append(out, a)
		}
	}
	for _, v := range r.Accounts {
		if _, ok := Capture(v); ok {
			continue
		}
		switch v {
		case AllAccounts:
			for i := range x.org.Accounts {
				add(&x.org.Accounts[i])
			}
			continue
		case ManagementAccount:
			v = x.org.ManagementAccountID
		}
		a, err := x.account(v)
		if err != nil {
			problem("accounts", err.Error())
			continue
		}
		add(a)
	}
	for _, v := range r.OUs {
		id, err := x.unit(v)
		if err != nil {
			problem("organizational_units", err.Error())
			continue
		}
		for i := range x.org.Accounts {
			a := &x.org.Accounts[i]
			if a.ParentID == id || slices.Contains(a.Path, id) {
				add(a)
			}
		}
	}
	if len(r.AccountTags) > 0 {
		for i := range x.org.Accounts {
			a := &x.org.Accounts[i]
			match := true
			for k, v := range r.AccountTags {
				if got, ok := a.Tags[k]; !ok || got != v {
					match = false
					break
				}
			}
			if match {
				add(a)
			}
		}
	}
	return out
}

// Evaluate applies the rules to the desired snapshot and the organization: every grant they ask
// for, merged by key (a grant several rules want lists them all), sorted by key. Principals carry
// their externalId and name; their ids are the plan's to fill in. What a rule names but cannot
// be had (an unknown account or OU, a capture that names no account) is a problem naming the
// rule and its field; the rest of the rule still applies.
func Evaluate(rules []Rule, snap scim.Snapshot, org *Organization) ([]Grant, []scim.Problem) {
	x := newOrgIndex(org)
	var problems []scim.Problem
	seenProblem := map[string]bool{}
	grants := map[Key]*Grant{}
	for _, r := range rules {
		problem := func(field, reason string) {
			k := r.Key + "\x00" + field + "\x00" + reason
			if !seenProblem[k] {
				seenProblem[k] = true
				problems = append(problems, scim.Problem{Kind: "assignment rule", ID: r.Key + "." + field, Reason: reason})
			}
		}
		static := x.staticAccounts(r, problem)
		give := func(p PrincipalRef, captures map[string]string) {
			accounts := slices.Clone(static)
			for _, v := range r.Accounts {
				name, ok := Capture(v)
				if !ok {
					continue
				}
				a, err := x.account(captures[name])
				if err != nil {
					problem("accounts", fmt.Sprintf("%s %q: capture %s: %v", strings.ToLower(string(p.Type)), p.Name, name, err))
					continue
				}
				if !slices.Contains(accounts, a) {
					accounts = append(accounts, a)
				}
			}
			var sets []string
			for _, v := range r.PermissionSets {
				if name, ok := Capture(v); ok {
					v = captures[name]
				}
				if v != "" && !slices.Contains(sets, v) {
					sets = append(sets, v)
				}
			}
			for _, ps := range sets {
				for _, a := range accounts {
					g := Grant{Principal: p, PermissionSet: ps, AccountID: a.ID, AccountName: a.Name}
					k := g.Key()
					if have, ok := grants[k]; ok {
						if !slices.Contains(have.Rules, r.Key) {
							have.Rules = append(have.Rules, r.Key)
						}
						continue
					}
					g.Rules = []string{r.Key}
					grants[k] = &g
				}
			}
		}
		for _, g := range snap.Groups {
			ref := PrincipalRef{Type: PrincipalGroup, ExternalID: g.ExternalID, Name: g.DisplayName}
			if slices.ContainsFunc(r.Groups, func(n string) bool { return strings.EqualFold(n, g.DisplayName) }) {
				give(ref, nil)
			}
			if r.GroupPattern != nil {
				if m := r.GroupPattern.FindStringSubmatch(g.DisplayName); m != nil && m[0] == g.DisplayName {
					caps := map[string]string{}
					for i, n := range r.GroupPattern.SubexpNames() {
						if n != "" {
							caps[n] = m[i]
						}
					}
					give(ref, caps)
				}
			}
		}
		for _, u := range snap.Users {
			if slices.ContainsFunc(r.Users, func(n string) bool { return strings.EqualFold(n, u.UserName) }) {
				give(PrincipalRef{Type: PrincipalUser, ExternalID: u.ExternalID, Name: u.UserName}, nil)
			}
		}
		for _, n := range r.Groups {
			if !slices.ContainsFunc(snap.Groups, func(g scim.Group) bool { return strings.EqualFold(n, g.DisplayName) }) {
				problem("groups", fmt.Sprintf("no group of the source is named %q", n))
			}
		}
		for _, n := range r.Users {
			if !slices.ContainsFunc(snap.Users, func(u scim.User) bool { return strings.EqualFold(n, u.UserName) }) {
				problem("users", fmt.Sprintf("no user of the source has the userName %q", n))
			}
		}
	}
	out := make([]Grant, 0, len(grants))
	for _, g := range grants {
		slices.Sort(g.Rules)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Grant) int { return compareKeys(a.Key(), b.Key()) })
	return out, problems
}
