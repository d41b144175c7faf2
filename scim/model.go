// Package scim holds the resource model that scimbridge syncs (User, Group, Snapshot, and a
// target's state), the rules IAM Identity Center applies to it, and the problems a record that
// breaks them is reported with. It is a leaf: it imports only the standard library, so the pure
// plan and every connector build without the AWS SDK. The SCIM client and the identitystore
// reader that talk to a target are in scim/client.
//
// Data flows one way: a connector produces a Snapshot (the desired state, keyed by stable source
// ids that become SCIM externalIds), the plan compares it with the target's current state, and
// the reconciler applies the changes through the client.
package scim

import "time"

// User is a workforce user as Identity Center holds it. ExternalID is the stable id of the
// user in the source directory; it never changes when the user is renamed.
type User struct {
	ExternalID        string     `json:"externalId"`
	UserName          string     `json:"userName"`
	DisplayName       string     `json:"displayName"`
	GivenName         string     `json:"givenName"`
	FamilyName        string     `json:"familyName"`
	MiddleName        string     `json:"middleName,omitempty"`
	HonorificPrefix   string     `json:"honorificPrefix,omitempty"`
	HonorificSuffix   string     `json:"honorificSuffix,omitempty"`
	NickName          string     `json:"nickName,omitempty"`
	ProfileURL        string     `json:"profileUrl,omitempty"`
	Title             string     `json:"title,omitempty"`
	UserType          string     `json:"userType,omitempty"`
	PreferredLanguage string     `json:"preferredLanguage,omitempty"`
	Locale            string     `json:"locale,omitempty"`
	Timezone          string     `json:"timezone,omitempty"`
	Email             string     `json:"email,omitempty"`
	EmailType         string     `json:"emailType,omitempty"`
	PhoneNumber       string     `json:"phoneNumber,omitempty"`
	PhoneType         string     `json:"phoneType,omitempty"`
	Address           *Address   `json:"address,omitempty"`
	Active            bool       `json:"active"`
	Enterprise        Enterprise `json:"enterprise,omitzero"`
}

// Address is the single address Identity Center keeps for a user.
type Address struct {
	Formatted     string `json:"formatted,omitempty"`
	StreetAddress string `json:"streetAddress,omitempty"`
	Locality      string `json:"locality,omitempty"`
	Region        string `json:"region,omitempty"`
	PostalCode    string `json:"postalCode,omitempty"`
	Country       string `json:"country,omitempty"`
	Type          string `json:"type,omitempty"`
}

// Enterprise holds the attributes of the SCIM enterprise user extension
// (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User) that Identity Center accepts.
//
// In a desired Snapshot, Manager is the ExternalID of the manager; in a target's state it is the
// manager's target id. The plan translates between the two.
type Enterprise struct {
	EmployeeNumber string `json:"employeeNumber,omitempty"`
	CostCenter     string `json:"costCenter,omitempty"`
	Organization   string `json:"organization,omitempty"`
	Division       string `json:"division,omitempty"`
	Department     string `json:"department,omitempty"`
	Manager        string `json:"manager,omitempty"`
}

// Group is a group as Identity Center holds it. Identity Center groups cannot nest, so Members
// is the flattened set of users, each named by its ExternalID, sorted and without duplicates.
type Group struct {
	ExternalID  string   `json:"externalId"`
	DisplayName string   `json:"displayName"`
	Members     []string `json:"members,omitempty"`
}

// Snapshot is a desired state read from a source: every user and group that should exist,
// sorted by ExternalID. Skipped names the source ids of records that exist in the source but
// could not be sent; the plan leaves their target objects exactly as they are.
type Snapshot struct {
	Users   []User    `json:"users"`
	Groups  []Group   `json:"groups"`
	Skipped []Problem `json:"skipped,omitempty"`
}

// Problem reports a record that cannot be sent, or a part of one that was left out: the kind of
// record ("user" or "group"), its source id, the field, and why.
type Problem struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
	// Dropped is true when the whole record was left out; false when only a part (for example
	// one membership) was.
	Dropped bool `json:"dropped"`
}

// Error formats the problem as one line that names the record and the field.
func (p Problem) Error() string {
	s := p.Kind + " " + quote(p.ID)
	if p.Field != "" {
		s += " field " + p.Field
	}
	return s + ": " + p.Reason
}

// TargetUser is a user as read from a target: its target id and its attributes. ExternalID is
// empty for users that no SCIM client created. Enterprise.Manager holds the manager's target id.
// Created is when the target made it (SCIM meta.created, identitystore CreatedAt); zero when the
// target does not say.
type TargetUser struct {
	ID string `json:"id"`
	User
	Created time.Time `json:"created,omitzero"`
}

// TargetGroup is a group as read from a target; Members are target user ids, sorted.
type TargetGroup struct {
	ID          string   `json:"id"`
	ExternalID  string   `json:"externalId,omitempty"`
	DisplayName string   `json:"displayName"`
	Members     []string `json:"members,omitempty"`
	// Created is when the target made it; zero when the target does not say.
	Created time.Time `json:"created,omitzero"`
}

// TargetState is what a target holds now, or what scimbridge last wrote to it when the state
// store is trusted instead of a full read.
type TargetState struct {
	Users  []TargetUser  `json:"users"`
	Groups []TargetGroup `json:"groups"`
}
