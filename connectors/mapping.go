package connectors

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
)

// MappingConfig overrides a flavour's default mapping, target by target. Keys are target names
// (see UserTargets and GroupTargets); values are expressions (see FunctionNames for what they can
// call). An empty value removes the default. The manager target is a reference: an id or any key
// of another user entry (AD's manager DN, a uid, an email), resolved to that user's id.
//
// scimbridge's config file expands ${VAR} in every value, so a regexReplace group reference is
// written $${1} there.
//
//	mapping:
//	  user:
//	    userName: lower(attr("mail"))
//	    department: default(attr("department"), "Unassigned")
//	    manager: attr("manager")        # a reference: an id or any key of another user
//	  group:
//	    displayName: trim(attr("cn"))
type MappingConfig struct {
	User  map[string]Expression `yaml:"user,omitempty" json:"user,omitempty"`
	Group map[string]Expression `yaml:"group,omitempty" json:"group,omitempty"`
}

// userTarget is one attribute of scim.User that a mapping can set.
type userTarget struct {
	name string
	kind resultKind
	set  func(u *scim.User, v string)
	get  func(u *scim.User) string // the value in a mapped user, for reports
}

func addr(u *scim.User) *scim.Address {
	if u.Address == nil {
		u.Address = &scim.Address{}
	}
	return u.Address
}

// targetManager is the one target whose value is a reference, resolved after mapping.
const targetManager = "manager"

// targetActive is the one bool target.
const targetActive = "active"

var userTargets = []userTarget{
	{"userName", kindString, func(u *scim.User, v string) { u.UserName = v }, func(u *scim.User) string { return u.UserName }},
	{"displayName", kindString, func(u *scim.User, v string) { u.DisplayName = v }, func(u *scim.User) string { return u.DisplayName }},
	{"givenName", kindString, func(u *scim.User, v string) { u.GivenName = v }, func(u *scim.User) string { return u.GivenName }},
	{"familyName", kindString, func(u *scim.User, v string) { u.FamilyName = v }, func(u *scim.User) string { return u.FamilyName }},
	{"middleName", kindString, func(u *scim.User, v string) { u.MiddleName = v }, func(u *scim.User) string { return u.MiddleName }},
	{"honorificPrefix", kindString, func(u *scim.User, v string) { u.HonorificPrefix = v }, func(u *scim.User) string { return u.HonorificPrefix }},
	{"honorificSuffix", kindString, func(u *scim.User, v string) { u.HonorificSuffix = v }, func(u *scim.User) string { return u.HonorificSuffix }},
	{"nickName", kindString, func(u *scim.User, v string) { u.NickName = v }, func(u *scim.User) string { return u.NickName }},
	{"profileUrl", kindString, func(u *scim.User, v string) { u.ProfileURL = v }, func(u *scim.User) string { return u.ProfileURL }},
	{"title", kindString, func(u *scim.User, v string) { u.Title = v }, func(u *scim.User) string { return u.Title }},
	{"userType", kindString, func(u *scim.User, v string) { u.UserType = v }, func(u *scim.User) string { return u.UserType }},
	{"preferredLanguage", kindString, func(u *scim.User, v string) { u.PreferredLanguage = v }, func(u *scim.User) string { return u.PreferredLanguage }},
	{"locale", kindString, func(u *scim.User, v string) { u.Locale = v }, func(u *scim.User) string { return u.Locale }},
	{"timezone", kindString, func(u *scim.User, v string) { u.Timezone = v }, func(u *scim.User) string { return u.Timezone }},
	{"email", kindString, func(u *scim.User, v string) { u.Email = v }, func(u *scim.User) string { return u.Email }},
	{"emailType", kindString, func(u *scim.User, v string) { u.EmailType = v }, func(u *scim.User) string { return u.EmailType }},
	{"phoneNumber", kindString, func(u *scim.User, v string) { u.PhoneNumber = v }, func(u *scim.User) string { return u.PhoneNumber }},
	{"phoneType", kindString, func(u *scim.User, v string) { u.PhoneType = v }, func(u *scim.User) string { return u.PhoneType }},
	{"address.formatted", kindString, func(u *scim.User, v string) { setAddr(u, v, func(a *scim.Address) *string { return &a.Formatted }) }, func(u *scim.User) string { return getAddr(u, func(a *scim.Address) string { return a.Formatted }) }},
	{"address.streetAddress", kindString, func(u *scim.User, v string) { setAddr(u, v, func(a *scim.Address) *string { return &a.StreetAddress }) }, func(u *scim.User) string { return getAddr(u, func(a *scim.Address) string { return a.StreetAddress }) }},
	{"address.locality", kindString, func(u *scim.User, v string) { setAddr(u, v, func(a *scim.Address) *string { return &a.Locality }) }, func(u *scim.User) string { return getAddr(u, func(a *scim.Address) string { return a.Locality }) }},
	{"address.region", kindString, func(u *scim.User, v string) { setAddr(u, v, func(a *scim.Address) *string { return &a.Region }) }, func(u *scim.User) string { return getAddr(u, func(a *scim.Address) string { return a.Region }) }},
	{"address.postalCode", kindString, func(u *scim.User, v string) { setAddr(u, v, func(a *scim.Address) *string { return &a.PostalCode }) }, func(u *scim.User) string { return getAddr(u, func(a *scim.Address) string { return a.PostalCode }) }},
	{"address.country", kindString, func(u *scim.User, v string) { setAddr(u, v, func(a *scim.Address) *string { return &a.Country }) }, func(u *scim.User) string { return getAddr(u, func(a *scim.Address) string { return a.Country }) }},
	{"address.type", kindString, func(u *scim.User, v string) { setAddr(u, v, func(a *scim.Address) *string { return &a.Type }) }, func(u *scim.User) string { return getAddr(u, func(a *scim.Address) string { return a.Type }) }},
	{targetActive, kindBool, nil, nil}, // set by the caller
	{"employeeNumber", kindString, func(u *scim.User, v string) { u.Enterprise.EmployeeNumber = v }, func(u *scim.User) string { return u.Enterprise.EmployeeNumber }},
	{"costCenter", kindString, func(u *scim.User, v string) { u.Enterprise.CostCenter = v }, func(u *scim.User) string { return u.Enterprise.CostCenter }},
	{"organization", kindString, func(u *scim.User, v string) { u.Enterprise.Organization = v }, func(u *scim.User) string { return u.Enterprise.Organization }},
	{"division", kindString, func(u *scim.User, v string) { u.Enterprise.Division = v }, func(u *scim.User) string { return u.Enterprise.Division }},
	{"department", kindString, func(u *scim.User, v string) { u.Enterprise.Department = v }, func(u *scim.User) string { return u.Enterprise.Department }},
	{targetManager, kindString, nil, func(u *scim.User) string { return u.Enterprise.Manager }}, // a reference, resolved by Apply
}

func getAddr(u *scim.User, field func(*scim.Address) string) string {
	if u.Address == nil {
		return ""
	}
	return field(u.Address)
}

func setAddr(u *scim.User, v string, field func(*scim.Address) *string) {
	if v == "" {
		return
	}
	*field(addr(u)) = v
}

// requiredUserTargets must be mapped (by the flavour or the config): Identity Center requires them.
var requiredUserTargets = []string{"userName", "displayName", "givenName", "familyName"}

// UserTargets returns the user target names a MappingConfig accepts, in a fixed order.
func UserTargets() []string {
	out := make([]string, len(userTargets))
	for i, t := range userTargets {
		out[i] = t.name
	}
	return out
}

// GroupTargets returns the group target names a MappingConfig accepts.
func GroupTargets() []string { return []string{"displayName"} }

// Mapping is a compiled mapping and scope: safe for concurrent use, built once by Compile.
type Mapping struct {
	flavour string
	// user holds one program per userTargets index; nil where nothing is mapped.
	user             []*program
	groupDisplayName *program
	scope            compiledScope
}

// Compile compiles a flavour's default mapping, overridden target by target by m, and the scope s.
// Every problem is reported at once (errors.Join), each naming its configuration key and line, and
// each wrapping ErrConfig.
func Compile(f Flavour, m MappingConfig, s ScopeConfig) (*Mapping, error) {
	var errs []error
	out := &Mapping{flavour: f.Name, user: make([]*program, len(userTargets))}

	index := map[string]int{}
	for i, t := range userTargets {
		index[strings.ToLower(t.name)] = i
	}
	// Resolve the expression of every user target: config over flavour.
	exprs := make([]Expression, len(userTargets))
	keys := make([]string, len(userTargets))
	for _, name := range slices.Sorted(maps.Keys(f.User)) {
		i, ok := index[strings.ToLower(name)]
		if !ok {
			errs = append(errs, configErrorf("flavour %s: mapping.user.%s: unknown target (known: %s)", f.Name, name, strings.Join(UserTargets(), ", ")))
			continue
		}
		exprs[i], keys[i] = Expr(f.User[name]), fmt.Sprintf("flavour %s default mapping.user.%s", f.Name, userTargets[i].name)
	}
	for _, name := range slices.Sorted(maps.Keys(m.User)) {
		x := m.User[name]
		i, ok := index[strings.ToLower(name)]
		if !ok {
			errs = append(errs, configErrorf("%s: unknown target (known: %s)", x.where("mapping.user."+name), strings.Join(UserTargets(), ", ")))
			continue
		}
		exprs[i], keys[i] = x, "mapping.user."+name
	}
	for i, t := range userTargets {
		if exprs[i].IsZero() {
			continue
		}
		p, err := compileExpression(keys[i], exprs[i], t.kind)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.user[i] = p
	}
	for _, name := range requiredUserTargets {
		if i := index[strings.ToLower(name)]; exprs[i].IsZero() {
			errs = append(errs, configErrorf("mapping.user.%s: required by Identity Center, but neither the %s flavour nor the configuration maps it", name, f.Name))
		}
	}

	// Groups: only displayName.
	gx, gkey := Expression{}, ""
	for _, name := range slices.Sorted(maps.Keys(f.Group)) {
		if !strings.EqualFold(name, "displayName") {
			errs = append(errs, configErrorf("flavour %s: mapping.group.%s: unknown target (known: displayName)", f.Name, name))
			continue
		}
		gx, gkey = Expr(f.Group[name]), fmt.Sprintf("flavour %s default mapping.group.displayName", f.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Group)) {
		x := m.Group[name]
		if !strings.EqualFold(name, "displayName") {
			errs = append(errs, configErrorf("%s: unknown target (known: displayName)", x.where("mapping.group."+name)))
			continue
		}
		gx, gkey = x, "mapping.group."+name
	}
	if gx.IsZero() {
		errs = append(errs, configErrorf("mapping.group.displayName: required by Identity Center, but neither the %s flavour nor the configuration maps it", f.Name))
	} else if p, err := compileExpression(gkey, gx, kindString); err != nil {
		errs = append(errs, err)
	} else {
		out.groupDisplayName = p
	}

	sc, err := compileScope(s)
	if err != nil {
		errs = append(errs, err)
	}
	out.scope = sc
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Flavour returns the name of the flavour the mapping was compiled from.
func (m *Mapping) Flavour() string { return m.flavour }

// mapUser evaluates every user target for the entry ev is set to. It returns the user, the
// unresolved manager reference, and on failure the target that failed and why.
func (m *Mapping) mapUser(ev *evaluator, e *Entry) (u scim.User, managerRef string, field string, err error) {
	ev.env.set(e)
	u.ExternalID = e.ID
	u.Active = true
	for i, p := range m.user {
		if p == nil {
			continue
		}
		t := &userTargets[i]
		if t.kind == kindBool {
			b, err := p.runBool(ev)
			if err != nil {
				return u, "", t.name, err
			}
			u.Active = b
			continue
		}
		v, err := p.runString(ev)
		if err != nil {
			return u, "", t.name, err
		}
		if t.name == targetManager {
			managerRef = strings.TrimSpace(v)
			continue
		}
		t.set(&u, v)
	}
	return u, managerRef, "", nil
}

// mapGroupName evaluates the group displayName for e.
func (m *Mapping) mapGroupName(ev *evaluator, e *Entry) (string, error) {
	ev.env.set(e)
	return m.groupDisplayName.runString(ev)
}
