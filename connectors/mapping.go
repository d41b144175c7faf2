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

// userTarget is one attribute of scim.User that a mapping can set: a row of
// scim.UserAttributes.
type userTarget struct {
	name    string
	aliases []string // older spellings, accepted with a warning
	kind    resultKind
	set     func(u *scim.User, v string)
	get     func(u *scim.User) string // the value in a mapped user, for reports
}

// targetManager is the one target whose value is a reference, resolved after mapping.
const targetManager = "manager"

// userTargets are the rows of scim.UserAttributes that have a configuration key, in its order.
var userTargets = func() []userTarget {
	var out []userTarget
	for _, a := range scim.UserAttributes() {
		switch {
		case a.Key == "":
			// externalId: the entry's id, never mapped.
		case a.Bool:
			out = append(out, userTarget{name: a.Key, aliases: a.Aliases, kind: kindBool}) // set by the caller
		case a.Key == targetManager:
			// A reference, resolved by Apply.
			out = append(out, userTarget{name: a.Key, aliases: a.Aliases, kind: kindString, get: a.Get})
		default:
			out = append(out, userTarget{name: a.Key, aliases: a.Aliases, kind: kindString, set: a.Set, get: a.Get})
		}
	}
	return out
}()

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
	deprecated       []string
}

// Deprecated lists the configuration keys that use an older spelling of a target, each with
// its line and the key to write instead; the mapping works the same. Callers log them.
func (m *Mapping) Deprecated() []string { return m.deprecated }

// Compile compiles a flavour's default mapping, overridden target by target by m, and the scope s.
// Every problem is reported at once (errors.Join), each naming its configuration key and line, and
// each wrapping ErrConfig.
func Compile(f Flavour, m MappingConfig, s ScopeConfig) (*Mapping, error) {
	var errs []error
	out := &Mapping{flavour: f.Name, user: make([]*program, len(userTargets))}

	index, alias := map[string]int{}, map[string]int{}
	for i, t := range userTargets {
		index[strings.ToLower(t.name)] = i
		for _, a := range t.aliases {
			alias[strings.ToLower(a)] = i
		}
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
	setBy := map[int]string{}  // target index -> the config key that maps it
	viaAlias := map[int]bool{} // the target is mapped through an older spelling
	for _, name := range slices.Sorted(maps.Keys(m.User)) {
		x := m.User[name]
		i, ok := index[strings.ToLower(name)]
		isAlias := false
		if !ok {
			i, ok = alias[strings.ToLower(name)]
			isAlias = ok
		}
		if !ok {
			errs = append(errs, configErrorf("%s: unknown target (known: %s)", x.where("mapping.user."+name), strings.Join(UserTargets(), ", ")))
			continue
		}
		if isAlias {
			out.deprecated = append(out.deprecated, fmt.Sprintf("%s: %s is a deprecated spelling; write mapping.user.%s",
				x.where("mapping.user."+name), name, userTargets[i].name))
		}
		if other, dup := setBy[i]; dup && (isAlias || viaAlias[i]) {
			errs = append(errs, configErrorf("%s: maps %s, which mapping.user.%s maps too; keep one", x.where("mapping.user."+name), userTargets[i].name, other))
			continue
		}
		setBy[i], viaAlias[i] = name, viaAlias[i] || isAlias
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
