package access

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/plan"
)

// Owned is what the state store records of the access scimbridge created: only these permission
// sets and assignments are ever changed or deleted.
type Owned struct {
	// PermissionSets maps a permission set's name to what scimbridge created under it.
	PermissionSets map[string]OwnedPermissionSet
	// Assignments maps an assignment's key to what scimbridge created.
	Assignments map[Key]OwnedAssignment
}

// PendingARN is the ARN recorded for a permission set whose create was sent but not answered
// yet: a crash before the answer leaves it, and the next plan claims the permission set of that
// name (ClaimPermissionSets) instead of taking it for one someone else made.
const PendingARN = "pending"

// OwnedPermissionSet is a permission set scimbridge created: its ARN and what it last wrote.
type OwnedPermissionSet struct {
	ARN     string        `json:"arn"`
	Written PermissionSet `json:"written"`
	// ProvisionPending is set before an update is sent and cleared once the provisioning that
	// follows it SUCCEEDED: while it is set, every plan provisions the permission set again, so
	// that a FAILED provisioning, or a run that died between the update and the provisioning,
	// does not leave the accounts with the old version.
	ProvisionPending bool `json:"provisionPending,omitempty"`
}

// OwnedAssignment is an assignment scimbridge created, with the ids it was created with.
type OwnedAssignment struct {
	Key              Key    `json:"key"`
	PrincipalID      string `json:"principalId"`
	PrincipalName    string `json:"principalName,omitempty"`
	PermissionSetARN string `json:"permissionSetArn"`
	AccountName      string `json:"accountName,omitempty"`
}

// Input is everything Compute plans from.
type Input struct {
	Rules   []Rule
	Desired scim.Snapshot
	Org     *Organization
	// Defined are the permission sets the configuration defines: scimbridge creates and keeps
	// them as defined, but only changes one it created.
	Defined []PermissionSet
	// Current are the instance's permission sets as read.
	Current []PermissionSet
	// Assignments are the instance's assignments of the principals read (see Principals).
	Assignments []Assignment
	// Principals are the users and groups of the source as the target knows them: with their
	// identity store id, or Created when this run creates them (a dry run).
	Principals []PrincipalRef
	Owned      Owned
	Policy     plan.Policy
}

// Plan is what a run changes in the instance's access, each list sorted.
type Plan struct {
	CreatePermissionSets []PermissionSet       `json:"createPermissionSets,omitempty"`
	UpdatePermissionSets []PermissionSetUpdate `json:"updatePermissionSets,omitempty"`
	// ProvisionPermissionSets are provisioned again to every account that has them, after their
	// policies changed.
	ProvisionPermissionSets []PermissionSetRef `json:"provisionPermissionSets,omitempty"`
	DeletePermissionSets    []PermissionSetRef `json:"deletePermissionSets,omitempty"`
	CreateAssignments       []Change           `json:"createAssignments,omitempty"`
	DeleteAssignments       []Change           `json:"deleteAssignments,omitempty"`
	// ForgetAssignments and ForgetPermissionSets are owned records whose object is gone from
	// the instance: only the state store changes.
	ForgetAssignments    []Key    `json:"forgetAssignments,omitempty"`
	ForgetPermissionSets []string `json:"forgetPermissionSets,omitempty"`
	// ClaimPermissionSets are permission sets whose create an earlier run sent but never saw
	// answered (PendingARN): they are recorded as owned with the ARN the instance shows.
	ClaimPermissionSets []PermissionSetRef `json:"claimPermissionSets,omitempty"`
	// Problems are grants or definitions left out, with the reason.
	Problems []scim.Problem `json:"problems,omitempty"`
	// Desired counts the grants the rules ask for.
	Desired int `json:"desiredAssignments"`
	// Owned counts the assignments and permission sets scimbridge owned before this plan.
	OwnedAssignments    int `json:"ownedAssignments"`
	OwnedPermissionSets int `json:"ownedPermissionSets"`
	// Unmanaged counts the assignments of the principals read, and the permission sets, that
	// scimbridge did not create and leaves alone.
	UnmanagedAssignments    int `json:"unmanagedAssignments"`
	UnmanagedPermissionSets int `json:"unmanagedPermissionSets"`
}

// PermissionSetRef names a permission set.
type PermissionSetRef struct {
	Name string `json:"name"`
	ARN  string `json:"arn,omitempty"`
	// Retry marks a provisioning owed by an earlier run (its provisioning FAILED or never ran):
	// the permission set already matches the configuration.
	Retry bool `json:"retry,omitempty"`
	// Have is the permission set as the instance holds it (provisionings only), recorded again
	// as written when the provisioning SUCCEEDED.
	Have PermissionSet `json:"-"`
}

// PermissionSetUpdate is an owned permission set whose definition changed.
type PermissionSetUpdate struct {
	Name   string        `json:"name"`
	ARN    string        `json:"arn"`
	Fields []plan.Field  `json:"fields"`
	Have   PermissionSet `json:"-"`
	Want   PermissionSet `json:"-"`
}

// Change is one assignment to create or delete.
type Change struct {
	Grant
	// PermissionSetARN is empty for a permission set this run creates.
	PermissionSetARN string `json:"permissionSetArn,omitempty"`
}

// Assignment returns the assignment the change writes; principal and permission set ids must
// be known by then.
func (c Change) Assignment() Assignment {
	return Assignment{AccountID: c.AccountID, PermissionSetARN: c.PermissionSetARN, PrincipalType: c.Principal.Type, PrincipalID: c.Principal.ID}
}

// Empty reports whether the plan writes nothing to the instance.
func (p *Plan) Empty() bool { return p.Writes() == 0 }

// Writes counts the permission sets and assignments the plan changes.
func (p *Plan) Writes() int {
	return len(p.CreatePermissionSets) + len(p.UpdatePermissionSets) + len(p.ProvisionPermissionSets) +
		len(p.DeletePermissionSets) + len(p.CreateAssignments) + len(p.DeleteAssignments)
}

// DefaultSessionDuration is what Identity Center gives a permission set without one.
const DefaultSessionDuration = "PT1H"

// Normalize returns ps in the form two equal definitions share: slices sorted and without
// duplicates, the inline policy compacted, an empty session duration made PT1H, an empty
// customer policy path made "/", empty tags nil. The ARN is kept.
func Normalize(ps PermissionSet) PermissionSet {
	if ps.SessionDuration == "" {
		ps.SessionDuration = DefaultSessionDuration
	}
	ps.ManagedPolicies = slices.Compact(slices.Sorted(slices.Values(ps.ManagedPolicies)))
	cps := slices.Clone(ps.CustomerManagedPolicies)
	for i := range cps {
		if cps[i].Path == "" {
			cps[i].Path = "/"
		}
	}
	slices.SortFunc(cps, func(a, b CustomerPolicy) int { return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Name, b.Name)) })
	ps.CustomerManagedPolicies = slices.Compact(cps)
	if len(ps.ManagedPolicies) == 0 {
		ps.ManagedPolicies = nil
	}
	if len(ps.CustomerManagedPolicies) == 0 {
		ps.CustomerManagedPolicies = nil
	}
	if ps.InlinePolicy != "" {
		var b bytes.Buffer
		if json.Compact(&b, []byte(ps.InlinePolicy)) == nil {
			ps.InlinePolicy = b.String()
		}
	}
	if len(ps.Tags) == 0 {
		ps.Tags = nil
	}
	return ps
}

// Diff lists the fields in which have differs from want (both normalised), as the plan shows them.
func Diff(have, want PermissionSet) []plan.Field {
	have, want = Normalize(have), Normalize(want)
	var out []plan.Field
	add := func(name, from, to string) {
		if from != to {
			out = append(out, plan.Field{Name: name, From: from, To: to})
		}
	}
	add("description", have.Description, want.Description)
	add("sessionDuration", have.SessionDuration, want.SessionDuration)
	add("relayState", have.RelayState, want.RelayState)
	add("managedPolicies", strings.Join(have.ManagedPolicies, ", "), strings.Join(want.ManagedPolicies, ", "))
	add("customerManagedPolicies", customerList(have.CustomerManagedPolicies), customerList(want.CustomerManagedPolicies))
	if have.InlinePolicy != want.InlinePolicy {
		out = append(out, plan.Field{Name: "inlinePolicy", From: policySummary(have.InlinePolicy), To: policySummary(want.InlinePolicy)})
	}
	add("tags", tagList(have.Tags), tagList(want.Tags))
	return out
}

func customerList(cps []CustomerPolicy) string {
	var s []string
	for _, c := range cps {
		s = append(s, c.Path+c.Name)
	}
	return strings.Join(s, ", ")
}

func tagList(tags map[string]string) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		s = append(s, k+"="+tags[k])
	}
	return strings.Join(s, ", ")
}

// policySummary shows an inline policy by its size and fingerprint, never whole.
func policySummary(p string) string {
	if p == "" {
		return ""
	}
	var h uint32 = 2166136261 // FNV-1a: enough to tell two versions apart in a plan
	for i := 0; i < len(p); i++ {
		h = (h ^ uint32(p[i])) * 16777619
	}
	return fmt.Sprintf("%d bytes, fnv %08x", len(p), h)
}

// pkey keys a principal by type and externalId.
type pkey struct {
	t   PrincipalType
	ext string
}

// Compute plans the access: the rules evaluated against the desired snapshot and the
// organization, compared with the instance by (principal externalId, permission set name, account
// id). It does no I/O and reads no clock; its output is sorted.
func Compute(in Input) *Plan {
	grants, problems := Evaluate(in.Rules, in.Desired, in.Org)
	p := &Plan{Problems: problems, Desired: len(grants), OwnedAssignments: len(in.Owned.Assignments), OwnedPermissionSets: len(in.Owned.PermissionSets)}

	current := map[string]PermissionSet{} // by name
	nameOfARN := map[string]string{}
	for _, ps := range in.Current {
		current[ps.Name] = ps
		nameOfARN[ps.ARN] = ps.Name
	}
	// A create whose answer was lost: the permission set of its name is the one it made.
	if len(in.Owned.PermissionSets) > 0 {
		sets := maps.Clone(in.Owned.PermissionSets)
		for name, own := range sets {
			if own.ARN != PendingARN {
				continue
			}
			if cur, ok := current[name]; ok {
				sets[name] = OwnedPermissionSet{ARN: cur.ARN, Written: Normalize(cur)}
				p.ClaimPermissionSets = append(p.ClaimPermissionSets, PermissionSetRef{Name: name, ARN: cur.ARN})
			} else {
				delete(sets, name)
				p.ForgetPermissionSets = append(p.ForgetPermissionSets, name)
			}
		}
		in.Owned.PermissionSets = sets
	}
	// Permission sets: those the configuration defines.
	usable := map[string]string{} // name -> ARN ("" when this run creates it)
	defined := map[string]bool{}
	for _, want := range in.Defined {
		want = Normalize(want)
		defined[want.Name] = true
		cur, exists := current[want.Name]
		own, owned := in.Owned.PermissionSets[want.Name]
		// AWS cannot clear a description or a relay state (UpdatePermissionSet takes 1 character
		// at least, and no call removes them): one left out of the configuration is left as the
		// instance holds it, rather than planned as a change no run can make.
		if exists {
			want.Description = cmp.Or(want.Description, cur.Description)
			want.RelayState = cmp.Or(want.RelayState, cur.RelayState)
		}
		switch {
		case !exists:
			if owned {
				p.ForgetPermissionSets = append(p.ForgetPermissionSets, want.Name)
			}
			p.CreatePermissionSets = append(p.CreatePermissionSets, want)
			usable[want.Name] = ""
		case owned && own.ARN == cur.ARN:
			usable[want.Name] = cur.ARN
			if fields := Diff(cur, want); len(fields) > 0 && in.Policy.AllowsUpdate() {
				w := want
				w.ARN = cur.ARN
				p.UpdatePermissionSets = append(p.UpdatePermissionSets, PermissionSetUpdate{Name: want.Name, ARN: cur.ARN, Fields: fields, Have: Normalize(cur), Want: w})
				p.ProvisionPermissionSets = append(p.ProvisionPermissionSets, PermissionSetRef{Name: want.Name, ARN: cur.ARN, Have: w})
			} else if own.ProvisionPending {
				p.ProvisionPermissionSets = append(p.ProvisionPermissionSets, PermissionSetRef{Name: want.Name, ARN: cur.ARN, Retry: true, Have: Normalize(cur)})
			}
		default:
			usable[want.Name] = cur.ARN
			p.Problems = append(p.Problems, scim.Problem{Kind: "permission set", ID: want.Name, Field: "access.permission_sets",
				Reason: "a permission set of this name exists that scimbridge did not create; it is used as it is and never modified"})
		}
	}
	for _, ps := range in.Current {
		if own, ok := in.Owned.PermissionSets[ps.Name]; !ok || own.ARN != ps.ARN {
			p.UnmanagedPermissionSets++
		}
		if _, ok := usable[ps.Name]; !ok {
			usable[ps.Name] = ps.ARN // referenced by name, never modified
		}
	}

	// Principals: by key and by id (owned records remember the ids they were created with).
	byKey := map[pkey]PrincipalRef{}
	keyOfID := map[string]pkey{}
	for _, r := range in.Principals {
		byKey[pkey{r.Type, r.ExternalID}] = r
		if r.ID != "" {
			keyOfID[string(r.Type)+"/"+r.ID] = pkey{r.Type, r.ExternalID}
		}
	}
	for k, o := range in.Owned.Assignments {
		id := string(k.Type) + "/" + o.PrincipalID
		if _, ok := keyOfID[id]; !ok {
			keyOfID[id] = pkey{k.Type, k.ExternalID}
		}
	}

	// What the instance holds, by key.
	have := map[Key]Assignment{}
	for _, a := range in.Assignments {
		pk, ok := keyOfID[string(a.PrincipalType)+"/"+a.PrincipalID]
		name, okPS := nameOfARN[a.PermissionSetARN]
		if !ok || !okPS {
			continue
		}
		k := Key{Type: pk.t, ExternalID: pk.ext, PermissionSet: name, AccountID: a.AccountID}
		if o, owned := in.Owned.Assignments[k]; owned && o.PrincipalID != a.PrincipalID {
			continue // the principal was re-created: the old id's assignment is not this key's
		}
		have[k] = a
	}
	for k := range have {
		if _, owned := in.Owned.Assignments[k]; !owned {
			p.UnmanagedAssignments++
		}
	}

	// Desired grants: create what is missing.
	want := map[Key]bool{}
	for _, g := range grants {
		k := g.Key()
		arn, ok := usable[g.PermissionSet]
		if !ok {
			p.Problems = append(p.Problems, scim.Problem{Kind: "assignment", ID: g.Principal.Name, Field: "permission_sets",
				Reason: fmt.Sprintf("permission set %q is neither defined in access.permission_sets nor on the instance; its assignment to account %s (%s) is left out", g.PermissionSet, g.AccountID, strings.Join(g.Rules, ", "))})
			continue
		}
		ref, ok := byKey[pkey{g.Principal.Type, g.Principal.ExternalID}]
		if !ok {
			p.Problems = append(p.Problems, scim.Problem{Kind: "assignment", ID: g.Principal.Name, Field: "principal",
				Reason: fmt.Sprintf("%s %q (%s) is not in the target as scimbridge's (left out of this run); its access is planned once it is", strings.ToLower(string(g.Principal.Type)), g.Principal.Name, g.Principal.ExternalID)})
			continue
		}
		want[k] = true
		if _, ok := have[k]; ok {
			continue
		}
		g.Principal = ref
		g.Principal.Name = cmp.Or(ref.Name, g.Principal.Name)
		p.CreateAssignments = append(p.CreateAssignments, Change{Grant: g, PermissionSetARN: arn})
	}

	// Owned assignments no longer wanted: delete what is there, forget what is gone.
	for _, k := range slices.SortedFunc(maps.Keys(in.Owned.Assignments), compareKeys) {
		o := in.Owned.Assignments[k]
		if want[k] {
			continue
		}
		a, ok := have[k]
		if !ok {
			p.ForgetAssignments = append(p.ForgetAssignments, k)
			continue
		}
		if !in.Policy.Deprovisions() {
			continue
		}
		ref := PrincipalRef{Type: k.Type, ExternalID: k.ExternalID, Name: o.PrincipalName, ID: a.PrincipalID}
		if r, ok := byKey[pkey{k.Type, k.ExternalID}]; ok && r.Name != "" {
			ref.Name = r.Name
		}
		p.DeleteAssignments = append(p.DeleteAssignments, Change{Grant: Grant{Principal: ref, PermissionSet: k.PermissionSet,
			AccountID: k.AccountID, AccountName: accountName(in.Org, k.AccountID, o.AccountName)}, PermissionSetARN: a.PermissionSetARN})
	}

	// Owned permission sets the configuration dropped: deleted once nothing known uses them.
	for _, name := range slices.Sorted(maps.Keys(in.Owned.PermissionSets)) {
		own := in.Owned.PermissionSets[name]
		if defined[name] {
			continue
		}
		cur, exists := current[name]
		if !exists || cur.ARN != own.ARN {
			p.ForgetPermissionSets = append(p.ForgetPermissionSets, name)
			continue
		}
		if !in.Policy.Deprovisions() {
			continue
		}
		if p.stillUsed(name, have) {
			p.Problems = append(p.Problems, scim.Problem{Kind: "permission set", ID: name, Field: "access.permission_sets",
				Reason: "no longer defined, but assignments scimbridge does not remove still use it; it is kept"})
			continue
		}
		p.DeletePermissionSets = append(p.DeletePermissionSets, PermissionSetRef{Name: name, ARN: own.ARN})
	}
	p.sort()
	return p
}

// stillUsed reports whether an assignment that stays after the plan (or one it creates) uses the
// permission set.
func (p *Plan) stillUsed(name string, have map[Key]Assignment) bool {
	deleted := map[Key]bool{}
	for _, c := range p.DeleteAssignments {
		deleted[c.Key()] = true
	}
	for k := range have {
		if k.PermissionSet == name && !deleted[k] {
			return true
		}
	}
	return slices.ContainsFunc(p.CreateAssignments, func(c Change) bool { return c.PermissionSet == name })
}

func accountName(org *Organization, id, fallback string) string {
	if org != nil {
		for _, a := range org.Accounts {
			if a.ID == id {
				return a.Name
			}
		}
	}
	return fallback
}

func (p *Plan) sort() {
	byName := func(a, b PermissionSetRef) int { return cmp.Compare(a.Name, b.Name) }
	slices.SortFunc(p.CreatePermissionSets, func(a, b PermissionSet) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(p.UpdatePermissionSets, func(a, b PermissionSetUpdate) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(p.ProvisionPermissionSets, byName)
	slices.SortFunc(p.DeletePermissionSets, byName)
	slices.SortFunc(p.ClaimPermissionSets, byName)
	byKey := func(a, b Change) int { return compareKeys(a.Key(), b.Key()) }
	slices.SortFunc(p.CreateAssignments, byKey)
	slices.SortFunc(p.DeleteAssignments, byKey)
	slices.SortFunc(p.ForgetAssignments, compareKeys)
	slices.Sort(p.ForgetPermissionSets)
	p.ForgetPermissionSets = slices.Compact(p.ForgetPermissionSets)
	slices.SortStableFunc(p.Problems, func(a, b scim.Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Reason, b.Reason))
	})
}
