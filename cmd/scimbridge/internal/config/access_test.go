package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/access"
)

func TestAccessConfig(t *testing.T) {
	dir := t.TempDir()
	policy := `{
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]
}`
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policies", "read.json"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "scimbridge.yaml")
	if err := os.WriteFile(path, []byte(`
source: {type: file, file: {path: directory.yaml}}
access:
  permission_sets:
    - name: AdministratorAccess
      description: Full access
      session_duration: PT4H
      managed_policies: [arn:aws:iam::aws:policy/AdministratorAccess]
    - name: DataReader
      inline_policy_file: policies/read.json
      customer_managed_policies: [{name: team-boundary, path: /team/}]
      relay_state: https://console.aws.amazon.com/s3
      tags: {team: data}
  assignments:
    - groups: [Administrators]
      permission_sets: AdministratorAccess
      accounts: all
    - group_pattern: 'AWS-(?P<account>\d{12})-(?P<permission_set>.+)'
      permission_sets: [$permission_set]
      accounts: [$account]
    - users: [alice@example.com]
      permission_sets: [DataReader, ViewOnlyAccess]
      accounts: [111122223333, Production]
      organizational_units: [Workloads]
      account_tags: {env: prod}
sync:
  guards: {max_assignment_deletes: 5}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	sets, err := c.AccessPermissionSets()
	if err != nil {
		t.Fatal(err)
	}
	want := []access.PermissionSet{
		{Name: "AdministratorAccess", Description: "Full access", SessionDuration: "PT4H", ManagedPolicies: []string{"arn:aws:iam::aws:policy/AdministratorAccess"}},
		{Name: "DataReader", SessionDuration: "PT1H", RelayState: "https://console.aws.amazon.com/s3",
			CustomerManagedPolicies: []access.CustomerPolicy{{Name: "team-boundary", Path: "/team/"}},
			InlinePolicy:            `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`,
			Tags:                    map[string]string{"team": "data"}},
	}
	if diff := cmp.Diff(want, sets); diff != "" {
		t.Errorf("permission sets (-want +got):\n%s", diff)
	}
	rules, err := c.AccessRules()
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 {
		t.Fatalf("got %d rules, want 3", len(rules))
	}
	if got := rules[0]; got.Key != "access.assignments[0]" || !cmp.Equal(got.Accounts, []string{"all"}) || !cmp.Equal(got.PermissionSets, []string{"AdministratorAccess"}) {
		t.Errorf("rule 0: got key %s accounts %v permission sets %v; want access.assignments[0], [all], [AdministratorAccess]", got.Key, got.Accounts, got.PermissionSets)
	}
	if re := rules[1].GroupPattern; re == nil || !re.MatchString("AWS-111122223333-ReadOnly") || re.MatchString("xAWS-111122223333-ReadOnly") {
		t.Errorf("rule 1: pattern %v does not match whole names only", re)
	}
	if got := rules[2].Accounts; !cmp.Equal(got, []string{"111122223333", "Production"}) {
		t.Errorf("rule 2 accounts: got %v, want the id as written and the name", got)
	}
	g := c.AccessGuards()
	if g.MaxDeletes != 5 || g.MaxDeletePercent != access.DefaultGuards.MaxDeletePercent {
		t.Errorf("access guards: got %+v, want max_deletes 5 and the default percent", g)
	}
}

func TestAccessProblemsAreAllReported(t *testing.T) {
	c, err := Parse([]byte(`
source: {type: file, file: {path: d.yaml}}
access:
  permission_sets:
    - name: This-name-is-far-too-long-for-aws-1
      session_duration: PT13H
      managed_policies: [AdministratorAccess]
      inline_policy: '{"Version": '
      customer_managed_policies: [{path: team}]
    - name: "bad name"
      session_duration: 4 hours
    - name: admin
    - name: Admin
      inline_policy: '{}'
      inline_policy_file: x.json
  assignments:
    - permission_sets: []
    - groups: [Ops]
      group_pattern: 'AWS-(?P<acct>\d{12}'
      permission_sets: [$permission_set]
      accounts: [$account, 12345678901]
    - users: [bob]
      permission_sets: [$ps]
      accounts: [all]
sync:
  guards: {max_assignment_delete_percent: 150, allow_assignment_deletes: -1}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`access.permission_sets[0].name: "This-name-is-far-too-long-for-aws-1" is 35 characters, more than 32`,
		`access.permission_sets[0].session_duration: "PT13H" is outside PT1H..PT12H`,
		`access.permission_sets[0].managed_policies[0]: "AdministratorAccess" is not an AWS managed policy ARN`,
		`access.permission_sets[0].inline_policy: not a JSON policy document`,
		`access.permission_sets[0].customer_managed_policies[0].name: required`,
		`access.permission_sets[0].customer_managed_policies[0].path: "team" must start and end with /`,
		`access.permission_sets[1].name: "bad name" may only hold letters, digits and +=,.@_-`,
		`access.permission_sets[1].session_duration: "4 hours" is not an ISO 8601 duration`,
		`access.permission_sets[3].name: "Admin" is defined again (first at access.permission_sets[2])`,
		`access.permission_sets[3].inline_policy: both inline_policy and inline_policy_file are set`,
		`access.assignments[0].groups: the rule names no principal`,
		`access.assignments[0].permission_sets: required`,
		`access.assignments[0].accounts: the rule selects no account`,
		`access.assignments[1].group_pattern: error parsing regexp`,
		`access.assignments[1].accounts[1]: "12345678901" looks like an account id but does not have 12 digits`,
		`access.assignments[2].permission_sets[0]: "$ps" refers to a capture, but the rule has no group_pattern`,
		`sync.guards.max_assignment_delete_percent: 150 is over 100`,
		`sync.guards.allow_assignment_deletes: must not be negative`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not hold %q:\n%v", want, err)
		}
	}
}

func TestAccessCaptureMustBeInThePattern(t *testing.T) {
	c, err := Parse([]byte(`
source: {type: file, file: {path: d.yaml}}
access:
  assignments:
    - group_pattern: 'AWS-(?P<acct>\d{12})-(?P<permission_set>.+)'
      permission_sets: [$permission_set]
      accounts: [$account]
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	want := `access.assignments[0].accounts[0]: "$account": group_pattern has no capture named account`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error holding %q", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "permission_sets[0]") {
		t.Errorf("a capture the pattern has is reported:\n%v", err)
	}
}

func TestNoAccessSection(t *testing.T) {
	c, err := Parse([]byte("source: {type: file, file: {path: d.yaml}}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Access != nil {
		t.Errorf("got access %+v, want nil without an access section", c.Access)
	}
	rules, err := c.AccessRules()
	if err != nil || rules != nil {
		t.Errorf("AccessRules: got %v, %v; want nil, nil", rules, err)
	}
}
