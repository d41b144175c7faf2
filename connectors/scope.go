package connectors

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// UserMode says which users are in scope.
type UserMode string

// User modes.
const (
	// UserModeAll syncs every user that passes the user filters (the default).
	UserModeAll UserMode = "all"
	// UserModeGroupMembers syncs only users that pass the user filters and are members, directly
	// or through nested groups, of a group in scope.
	UserModeGroupMembers UserMode = "group_members"
)

// UnmarshalYAML accepts only the known modes.
func (m *UserMode) UnmarshalYAML(n *yaml.Node) error {
	v := UserMode(n.Value)
	if n.Kind != yaml.ScalarNode || (v != UserModeAll && v != UserModeGroupMembers && v != "") {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: user_mode must be %q or %q, not %q", n.Line, UserModeAll, UserModeGroupMembers, n.Value)}}
	}
	*m = v
	return nil
}

// InactiveMode says what happens to users the mapping marks inactive (active=false).
type InactiveMode string

// Inactive modes.
const (
	// InactiveDisable sends inactive users with active=false (the default).
	InactiveDisable InactiveMode = "disable"
	// InactiveExclude leaves inactive users, and their memberships, out of the snapshot, so the
	// plan deprovisions the ones the bridge owns under its guards.
	InactiveExclude InactiveMode = "exclude"
)

// UnmarshalYAML accepts only the known modes.
func (m *InactiveMode) UnmarshalYAML(n *yaml.Node) error {
	v := InactiveMode(n.Value)
	if n.Kind != yaml.ScalarNode || (v != InactiveDisable && v != InactiveExclude && v != "") {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: inactive_users must be %q or %q, not %q", n.Line, InactiveDisable, InactiveExclude, n.Value)}}
	}
	*m = v
	return nil
}

// ScopeConfig selects the users and groups a sync covers. Everything is in scope by default.
//
//	scope:
//	  users:
//	    include: attr("employeeType") in ["Employee", "Contractor"]
//	    exclude: hasPrefix(attr("sAMAccountName"), "svc-")
//	  groups:
//	    names: [Administrators, Finance]
//	    name_pattern: ^aws-
//	    exclude: attr("description") == "legacy"
//	  user_mode: group_members   # or all
//	  inactive_users: disable    # or exclude
//
// A user or group is in scope when its include filter (if any) is true and its exclude filter
// (if any) is not. Groups must also match names (compared ignoring case with the mapped
// displayName) or name_pattern (an RE2 regular expression on the mapped displayName) when either
// is given. Members of nested groups flow into their parent groups whether or not the nested
// group itself is in scope. An entry whose filter fails to evaluate is reported as skipped, so the
// plan leaves its target object alone rather than deprovisioning it.
type ScopeConfig struct {
	Users         UserScope    `yaml:"users,omitempty" json:"users,omitzero"`
	Groups        GroupScope   `yaml:"groups,omitempty" json:"groups,omitzero"`
	UserMode      UserMode     `yaml:"user_mode,omitempty" json:"user_mode,omitempty"`
	InactiveUsers InactiveMode `yaml:"inactive_users,omitempty" json:"inactive_users,omitempty"`
}

// UserScope holds the user filters: expressions giving a bool.
type UserScope struct {
	Include Expression `yaml:"include,omitempty" json:"include,omitzero"`
	Exclude Expression `yaml:"exclude,omitempty" json:"exclude,omitzero"`
}

// GroupScope holds the group filters.
type GroupScope struct {
	Include Expression `yaml:"include,omitempty" json:"include,omitzero"`
	Exclude Expression `yaml:"exclude,omitempty" json:"exclude,omitzero"`
	// Names lists group displayNames to sync, compared ignoring case.
	Names []string `yaml:"names,omitempty" json:"names,omitempty"`
	// NamePattern is a regular expression (RE2) that a displayName to sync matches.
	NamePattern Expression `yaml:"name_pattern,omitempty" json:"name_pattern,omitzero"`
}

type compiledScope struct {
	userInclude, userExclude   *program
	groupInclude, groupExclude *program
	names                      map[string]bool // lower-cased
	pattern                    *regexp.Regexp
	mode                       UserMode
	inactive                   InactiveMode
}

// byName reports whether groups are selected by name at all.
func (s *compiledScope) byName() bool { return len(s.names) > 0 || s.pattern != nil }

// nameInScope reports whether a group's displayName is selected.
func (s *compiledScope) nameInScope(name string) bool {
	if !s.byName() {
		return true
	}
	return s.names[strings.ToLower(strings.TrimSpace(name))] || (s.pattern != nil && s.pattern.MatchString(name))
}

func compileScope(s ScopeConfig) (compiledScope, error) {
	var errs []error
	out := compiledScope{mode: s.UserMode, inactive: s.InactiveUsers}
	if out.mode == "" {
		out.mode = UserModeAll
	}
	if out.inactive == "" {
		out.inactive = InactiveDisable
	}
	if out.mode != UserModeAll && out.mode != UserModeGroupMembers {
		errs = append(errs, configErrorf("scope.user_mode: must be %q or %q, not %q", UserModeAll, UserModeGroupMembers, out.mode))
	}
	if out.inactive != InactiveDisable && out.inactive != InactiveExclude {
		errs = append(errs, configErrorf("scope.inactive_users: must be %q or %q, not %q", InactiveDisable, InactiveExclude, out.inactive))
	}
	compile := func(key string, x Expression, dst **program) {
		if x.IsZero() {
			return
		}
		p, err := compileExpression(key, x, kindBool)
		if err != nil {
			errs = append(errs, err)
			return
		}
		*dst = p
	}
	compile("scope.users.include", s.Users.Include, &out.userInclude)
	compile("scope.users.exclude", s.Users.Exclude, &out.userExclude)
	compile("scope.groups.include", s.Groups.Include, &out.groupInclude)
	compile("scope.groups.exclude", s.Groups.Exclude, &out.groupExclude)
	for i, n := range s.Groups.Names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			errs = append(errs, configErrorf("scope.groups.names[%d]: empty name", i))
			continue
		}
		if out.names == nil {
			out.names = map[string]bool{}
		}
		out.names[n] = true
	}
	if !s.Groups.NamePattern.IsZero() {
		re, err := regexp.Compile(s.Groups.NamePattern.Text)
		if err != nil {
			errs = append(errs, configErrorf("%s: %v", s.Groups.NamePattern.where("scope.groups.name_pattern"), err))
		} else {
			out.pattern = re
		}
	}
	return out, errors.Join(errs...)
}

// filter evaluates include and exclude for the entry ev is set to. It returns whether the entry
// is in scope, and which filter failed to evaluate and why.
func filter(ev *evaluator, include, exclude *program) (in bool, failed string, err error) {
	if include != nil {
		ok, err := include.runBool(ev)
		if err != nil {
			return false, include.key, err
		}
		if !ok {
			return false, "", nil
		}
	}
	if exclude != nil {
		ok, err := exclude.runBool(ev)
		if err != nil {
			return false, exclude.key, err
		}
		if ok {
			return false, "", nil
		}
	}
	return true, "", nil
}

// GroupMayBeInScope reports whether the group entry e can be in scope. It is false only when the
// group filters or the name selection put the group out of scope for certain; a filter or a
// displayName that fails to evaluate counts as "may be" (Apply reports such a group as skipped,
// and its members still count in user_mode group_members). Members are not needed to decide, so
// a source can ask before it reads them. Safe for concurrent use.
func (m *Mapping) GroupMayBeInScope(e *Entry) bool {
	ev := newEvaluator()
	ev.env.set(e)
	in, _, err := filter(ev, m.scope.groupInclude, m.scope.groupExclude)
	if err != nil {
		return true
	}
	if !in {
		return false
	}
	if !m.scope.byName() {
		return true
	}
	name, err := m.mapGroupName(ev, e)
	return err != nil || m.scope.nameInScope(name)
}
