package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/scimbridge/scimbridge/scim/access"
)

// Access is the access: section: permission sets and the rules that assign them to the synced
// groups and users on the organization's accounts. Without it scimbridge makes no sso-admin or
// organizations call at all.
//
//	access:
//	  permission_sets:
//	    - name: AdministratorAccess
//	      session_duration: PT4H
//	      managed_policies: [arn:aws:iam::aws:policy/AdministratorAccess]
//	  assignments:
//	    - groups: [Administrators]
//	      permission_sets: [AdministratorAccess]
//	      accounts: all
//	    - group_pattern: 'AWS-(?P<account>\d{12})-(?P<permission_set>.+)'
//	      permission_sets: [$permission_set]
//	      accounts: [$account]
type Access struct {
	// PermissionSets are the permission sets scimbridge creates and keeps as defined here (only
	// those it created are ever changed). A rule may also name a permission set that is not
	// defined here: it is used by name and never modified.
	PermissionSets []PermissionSetConfig `yaml:"permission_sets,omitempty"`
	// Assignments are the rules; each grants its principals its permission sets on its accounts.
	Assignments []AssignmentRule `yaml:"assignments,omitempty"`
}

// PermissionSetConfig defines one permission set.
type PermissionSetConfig struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// SessionDuration is ISO 8601, PT1H to PT12H (default PT1H).
	SessionDuration string `yaml:"session_duration,omitempty"`
	// ManagedPolicies are AWS managed policy ARNs.
	ManagedPolicies         []string               `yaml:"managed_policies,omitempty"`
	CustomerManagedPolicies []CustomerPolicyConfig `yaml:"customer_managed_policies,omitempty"`
	// InlinePolicy is a policy document (JSON); InlinePolicyFile names a file holding one,
	// relative to the config file's folder. At most one of them.
	InlinePolicy     string            `yaml:"inline_policy,omitempty"`
	InlinePolicyFile string            `yaml:"inline_policy_file,omitempty"`
	RelayState       string            `yaml:"relay_state,omitempty"`
	Tags             map[string]string `yaml:"tags,omitempty"`
}

// CustomerPolicyConfig references a customer managed policy by name and path (default "/").
type CustomerPolicyConfig struct {
	Name string `yaml:"name"`
	Path string `yaml:"path,omitempty"`
}

// AssignmentRule is one rule of access.assignments.
type AssignmentRule struct {
	// Groups are group names; GroupPattern a regular expression that must match a group's whole
	// name, whose named captures ((?P<account>...)) the values "$account" below refer to; Users
	// are userNames. At least one principal selector.
	Groups       []string `yaml:"groups,omitempty"`
	GroupPattern string   `yaml:"group_pattern,omitempty"`
	Users        []string `yaml:"users,omitempty"`
	// PermissionSets are names, or "$capture".
	PermissionSets StringList `yaml:"permission_sets"`
	// Accounts are ids, names, "all", "management" (the organization's management account), or
	// "$capture"; OrganizationalUnits are OU (or root) ids or
	// names, each selecting every account below it at any depth; AccountTags selects the accounts
	// carrying all these tags. The rule's accounts are the union of the three.
	Accounts            StringList        `yaml:"accounts,omitempty"`
	OrganizationalUnits StringList        `yaml:"organizational_units,omitempty"`
	AccountTags         map[string]string `yaml:"account_tags,omitempty"`
}

// StringList is a list of strings that may also be written as one string (accounts: all).
type StringList []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// The limits of IAM Identity Center's permission sets (sso-admin API reference).
const (
	maxPermissionSetName   = 32
	maxDescription         = 700
	maxRelayState          = 240
	maxInlineNonSpace      = 10240
	maxInlineBytes         = 32768
	maxManagedPolicies     = 20 // IAM's highest quota of managed policies per role (10 by default)
	maxTags                = 50
	maxCustomerPolicyName  = 128
	maxCustomerPolicyPath  = 512
	minSession, maxSession = 3600, 12 * 3600
)

var (
	permissionSetName = regexp.MustCompile(`^[\w+=,.@-]+$`)
	managedPolicyARN  = regexp.MustCompile(`^arn:aws[a-z-]*:iam::aws:policy/[\w+=,.@/-]+$`)
	isoDuration       = regexp.MustCompile(`^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$`)
	accountID         = regexp.MustCompile(`^\d{12}$`)
)

// setAccessDefaults fills in the guards of access (they live beside sync.guards).
func (c *Config) setAccessDefaults() {
	g := &c.Sync.Guards
	if g.MaxAssignmentDeletes == nil {
		g.MaxAssignmentDeletes = ptr(access.DefaultGuards.MaxDeletes)
	}
	if g.MaxAssignmentDeletePercent == nil {
		g.MaxAssignmentDeletePercent = ptr(access.DefaultGuards.MaxDeletePercent)
	}
}

// AccessGuards returns the access guards the config asks for.
func (c *Config) AccessGuards() access.Guards {
	g := access.DefaultGuards
	if v := c.Sync.Guards.MaxAssignmentDeletes; v != nil {
		g.MaxDeletes = *v
	}
	if v := c.Sync.Guards.MaxAssignmentDeletePercent; v != nil {
		g.MaxDeletePercent = *v
	}
	g.AllowDeletes = c.Sync.Guards.AllowAssignmentDeletes
	return g
}

// accessFilePaths lists the inline policy files, resolved against the config folder.
func (c *Config) accessFilePaths() []filePath {
	if c.Access == nil {
		return nil
	}
	var out []filePath
	for i := range c.Access.PermissionSets {
		out = append(out, filePath{fmt.Sprintf("access.permission_sets[%d].inline_policy_file", i), &c.Access.PermissionSets[i].InlinePolicyFile})
	}
	return out
}

// AccessPermissionSets returns the defined permission sets, their inline policy files read and
// compacted. Validate reports the same problems, all at once.
func (c *Config) AccessPermissionSets() ([]access.PermissionSet, error) {
	if c.Access == nil {
		return nil, nil
	}
	var out []access.PermissionSet
	var errs []error
	for i, p := range c.Access.PermissionSets {
		ps, perrs := p.compile(fmt.Sprintf("access.permission_sets[%d]", i))
		errs = append(errs, perrs...)
		out = append(out, ps)
	}
	return out, errors.Join(errs...)
}

// AccessRules returns the compiled assignment rules.
func (c *Config) AccessRules() ([]access.Rule, error) {
	if c.Access == nil {
		return nil, nil
	}
	var out []access.Rule
	var errs []error
	for i, r := range c.Access.Assignments {
		rule, rerrs := r.compile(fmt.Sprintf("access.assignments[%d]", i))
		errs = append(errs, rerrs...)
		out = append(out, rule)
	}
	return out, errors.Join(errs...)
}

// validateAccess checks the access section; every problem names its key path.
func (c *Config) validateAccess() []error {
	var errs []error
	g := c.Sync.Guards
	if v := g.MaxAssignmentDeletePercent; v != nil && *v > 100 {
		errs = append(errs, fmt.Errorf("sync.guards.max_assignment_delete_percent: %g is over 100", *v))
	}
	if g.AllowAssignmentDeletes < 0 {
		errs = append(errs, errors.New("sync.guards.allow_assignment_deletes: must not be negative"))
	}
	if c.Access == nil {
		return errs
	}
	if len(c.Access.Assignments) == 0 && len(c.Access.PermissionSets) == 0 {
		errs = append(errs, errors.New("access: neither permission_sets nor assignments; leave access out to manage no access"))
	}
	if _, err := c.AccessPermissionSets(); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]int{}
	for i, p := range c.Access.PermissionSets {
		k := strings.ToLower(p.Name)
		if j, ok := seen[k]; ok && p.Name != "" {
			errs = append(errs, fmt.Errorf("access.permission_sets[%d].name: %q is defined again (first at access.permission_sets[%d])", i, p.Name, j))
		}
		seen[k] = i
	}
	if _, err := c.AccessRules(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func (p PermissionSetConfig) compile(key string) (access.PermissionSet, []error) {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, field, fmt.Sprintf(format, args...)))
	}
	switch {
	case p.Name == "":
		add("name", "required")
	case utf8.RuneCountInString(p.Name) > maxPermissionSetName:
		add("name", "%q is %d characters, more than %d", p.Name, utf8.RuneCountInString(p.Name), maxPermissionSetName)
	case !permissionSetName.MatchString(p.Name):
		add("name", "%q may only hold letters, digits and +=,.@_-", p.Name)
	}
	if n := utf8.RuneCountInString(p.Description); n > maxDescription {
		add("description", "%d characters, more than %d", n, maxDescription)
	}
	if p.SessionDuration != "" {
		if err := checkSession(p.SessionDuration); err != nil {
			add("session_duration", "%v", err)
		}
	}
	if n := utf8.RuneCountInString(p.RelayState); n > maxRelayState {
		add("relay_state", "%d characters, more than %d", n, maxRelayState)
	}
	for j, arn := range p.ManagedPolicies {
		if !managedPolicyARN.MatchString(arn) {
			add(fmt.Sprintf("managed_policies[%d]", j), "%q is not an AWS managed policy ARN (arn:aws:iam::aws:policy/NAME)", arn)
		}
	}
	var cps []access.CustomerPolicy
	for j, cp := range p.CustomerManagedPolicies {
		f := fmt.Sprintf("customer_managed_policies[%d]", j)
		switch {
		case cp.Name == "":
			add(f+".name", "required")
		case len(cp.Name) > maxCustomerPolicyName || !permissionSetName.MatchString(cp.Name):
			add(f+".name", "%q is not a policy name (at most %d letters, digits and +=,.@_-)", cp.Name, maxCustomerPolicyName)
		}
		if cp.Path != "" && (!strings.HasPrefix(cp.Path, "/") || !strings.HasSuffix(cp.Path, "/") || len(cp.Path) > maxCustomerPolicyPath) {
			add(f+".path", "%q must start and end with / (such as /team/)", cp.Path)
		}
		cps = append(cps, access.CustomerPolicy{Name: cp.Name, Path: cp.Path})
	}
	if n := len(p.ManagedPolicies) + len(p.CustomerManagedPolicies); n > maxManagedPolicies {
		add("managed_policies", "%d managed and customer managed policies, more than IAM allows a role (%d at most, 10 by default)", n, maxManagedPolicies)
	}
	inline := p.InlinePolicy
	switch {
	case p.InlinePolicy != "" && p.InlinePolicyFile != "":
		add("inline_policy", "both inline_policy and inline_policy_file are set; use one")
	case p.InlinePolicyFile != "":
		b, err := os.ReadFile(p.InlinePolicyFile)
		if err != nil {
			add("inline_policy_file", "%v", err)
		}
		inline = string(b)
	}
	if inline != "" {
		field := "inline_policy"
		if p.InlinePolicyFile != "" {
			field = "inline_policy_file"
		}
		if err := checkPolicy(inline); err != nil {
			add(field, "%v", err)
		}
	}
	if len(p.Tags) > maxTags {
		add("tags", "%d tags, more than %d", len(p.Tags), maxTags)
	}
	for k, v := range p.Tags {
		if k == "" || utf8.RuneCountInString(k) > 128 || strings.HasPrefix(strings.ToLower(k), "aws:") {
			add("tags", "key %q must be 1 to 128 characters and not start with aws:", k)
		}
		if utf8.RuneCountInString(v) > 256 {
			add("tags", "the value of %q is more than 256 characters", k)
		}
	}
	return access.Normalize(access.PermissionSet{Name: p.Name, Description: p.Description, SessionDuration: p.SessionDuration,
		RelayState: p.RelayState, ManagedPolicies: slices.Clone(p.ManagedPolicies), CustomerManagedPolicies: cps,
		InlinePolicy: inline, Tags: p.Tags}), errs
}

// checkSession checks an ISO 8601 session duration against PT1H..PT12H.
func checkSession(s string) error {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "PT" {
		return fmt.Errorf("%q is not an ISO 8601 duration such as PT1H, PT4H30M or PT12H", s)
	}
	secs := 0
	for i, unit := range []int{3600, 60, 1} {
		if m[i+1] != "" {
			n, err := strconv.Atoi(m[i+1])
			if err != nil {
				return fmt.Errorf("%q is not an ISO 8601 duration", s)
			}
			secs += n * unit
		}
	}
	if secs < minSession || secs > maxSession {
		return fmt.Errorf("%q is outside PT1H..PT12H", s)
	}
	return nil
}

// checkPolicy checks an inline policy: a JSON object, at most 10,240 characters that are not
// white space and 32,768 bytes.
func checkPolicy(p string) error {
	var doc map[string]any
	if err := json.Unmarshal([]byte(p), &doc); err != nil {
		return fmt.Errorf("not a JSON policy document: %w", err)
	}
	nonSpace := 0
	for _, r := range p {
		if !unicode.IsSpace(r) {
			nonSpace++
		}
	}
	if nonSpace > maxInlineNonSpace {
		return fmt.Errorf("%d characters that are not white space, more than %d", nonSpace, maxInlineNonSpace)
	}
	if len(p) > maxInlineBytes {
		return fmt.Errorf("%d bytes, more than %d", len(p), maxInlineBytes)
	}
	return nil
}

func (r AssignmentRule) compile(key string) (access.Rule, []error) {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, field, fmt.Sprintf(format, args...)))
	}
	rule := access.Rule{Key: key, Groups: r.Groups, Users: r.Users, PermissionSets: r.PermissionSets,
		Accounts: r.Accounts, OUs: r.OrganizationalUnits, AccountTags: r.AccountTags}
	captures := map[string]bool{}
	if r.GroupPattern != "" {
		re, err := regexp.Compile(`^(?:` + r.GroupPattern + `)$`)
		if err != nil {
			add("group_pattern", "%v", err)
		} else {
			rule.GroupPattern = re
			for _, n := range re.SubexpNames() {
				if n != "" {
					captures[n] = true
				}
			}
		}
	}
	if len(r.Groups) == 0 && r.GroupPattern == "" && len(r.Users) == 0 {
		add("groups", "the rule names no principal: give groups, group_pattern or users")
	}
	for j, g := range r.Groups {
		if strings.TrimSpace(g) == "" {
			add(fmt.Sprintf("groups[%d]", j), "empty")
		}
	}
	for j, u := range r.Users {
		if strings.TrimSpace(u) == "" {
			add(fmt.Sprintf("users[%d]", j), "empty")
		}
	}
	checkCapture := func(field, v string) bool {
		name, ok := access.Capture(v)
		if !ok {
			return false
		}
		switch {
		case r.GroupPattern == "":
			add(field, "%q refers to a capture, but the rule has no group_pattern", v)
		case rule.GroupPattern != nil && !captures[name]:
			add(field, "%q: group_pattern has no capture named %s (write (?P<%s>...))", v, name, name)
		}
		return true
	}
	if len(r.PermissionSets) == 0 {
		add("permission_sets", "required: permission set names, or a $capture of group_pattern")
	}
	for j, ps := range r.PermissionSets {
		f := fmt.Sprintf("permission_sets[%d]", j)
		if checkCapture(f, ps) {
			continue
		}
		if !permissionSetName.MatchString(ps) || utf8.RuneCountInString(ps) > maxPermissionSetName {
			add(f, "%q is not a permission set name (at most %d letters, digits and +=,.@_-)", ps, maxPermissionSetName)
		}
	}
	if len(r.Accounts) == 0 && len(r.OrganizationalUnits) == 0 && len(r.AccountTags) == 0 {
		add("accounts", "the rule selects no account: give accounts (ids, names, all, management or a $capture), organizational_units or account_tags")
	}
	for j, a := range r.Accounts {
		f := fmt.Sprintf("accounts[%d]", j)
		switch {
		case checkCapture(f, a):
		case strings.TrimSpace(a) == "":
			add(f, "empty")
		case len(a) >= 10 && strings.Trim(a, "0123456789") == "" && !accountID.MatchString(a):
			add(f, "%q looks like an account id but does not have 12 digits", a)
		}
	}
	for j, ou := range r.OrganizationalUnits {
		if strings.TrimSpace(ou) == "" {
			add(fmt.Sprintf("organizational_units[%d]", j), "empty")
		}
	}
	for k := range r.AccountTags {
		if k == "" {
			add("account_tags", "a tag key is empty")
		}
	}
	return rule, errs
}
