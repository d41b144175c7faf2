package client

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"time"

	"github.com/scimbridge/scimbridge/scim"
)

// SCIM schema URNs.
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaListResp   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

// scimUser is the wire form of a user. Every attribute written here is read back by toTarget,
// so a user that has not changed compares equal after a read.
type scimUser struct {
	Schemas           []string        `json:"schemas,omitempty"`
	ID                string          `json:"id,omitempty"`
	ExternalID        string          `json:"externalId,omitempty"`
	UserName          string          `json:"userName"`
	DisplayName       string          `json:"displayName,omitempty"`
	Name              *scimName       `json:"name,omitempty"`
	NickName          string          `json:"nickName,omitempty"`
	ProfileURL        string          `json:"profileUrl,omitempty"`
	Title             string          `json:"title,omitempty"`
	UserType          string          `json:"userType,omitempty"`
	PreferredLanguage string          `json:"preferredLanguage,omitempty"`
	Locale            string          `json:"locale,omitempty"`
	Timezone          string          `json:"timezone,omitempty"`
	Active            *bool           `json:"active,omitempty"`
	Emails            []scimMulti     `json:"emails,omitempty"`
	PhoneNumbers      []scimMulti     `json:"phoneNumbers,omitempty"`
	Addresses         []scimAddress   `json:"addresses,omitempty"`
	Enterprise        *scimEnterprise `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,omitempty"`
	Meta              *scimMeta       `json:"meta,omitempty"` // read only; never sent
}

// scimMeta is the part of a resource's meta that scimbridge reads.
type scimMeta struct {
	Created string `json:"created,omitempty"`
}

// created parses meta.created; zero when it is missing or unreadable.
func (m *scimMeta) created() time.Time {
	if m == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, m.Created)
	if err != nil {
		return time.Time{}
	}
	return t
}

type scimName struct {
	Formatted       string `json:"formatted,omitempty"`
	GivenName       string `json:"givenName,omitempty"`
	FamilyName      string `json:"familyName,omitempty"`
	MiddleName      string `json:"middleName,omitempty"`
	HonorificPrefix string `json:"honorificPrefix,omitempty"`
	HonorificSuffix string `json:"honorificSuffix,omitempty"`
}

type scimMulti struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

type scimAddress struct {
	Formatted     string `json:"formatted,omitempty"`
	StreetAddress string `json:"streetAddress,omitempty"`
	Locality      string `json:"locality,omitempty"`
	Region        string `json:"region,omitempty"`
	PostalCode    string `json:"postalCode,omitempty"`
	Country       string `json:"country,omitempty"`
	Type          string `json:"type,omitempty"`
	Primary       bool   `json:"primary,omitempty"`
}

type scimEnterprise struct {
	EmployeeNumber string     `json:"employeeNumber,omitempty"`
	CostCenter     string     `json:"costCenter,omitempty"`
	Organization   string     `json:"organization,omitempty"`
	Division       string     `json:"division,omitempty"`
	Department     string     `json:"department,omitempty"`
	Manager        *scimValue `json:"manager,omitempty"`
}

type scimValue struct {
	Value string `json:"value"`
}

// userBody renders u for POST or PUT. The manager is given as a target id (managerID), never
// from u.Enterprise.Manager, which holds a source id in a desired snapshot.
func userBody(u scim.User, managerID string) scimUser {
	active := u.Active
	b := scimUser{
		Schemas:           []string{SchemaUser},
		ExternalID:        u.ExternalID,
		UserName:          u.UserName,
		DisplayName:       u.DisplayName,
		NickName:          u.NickName,
		ProfileURL:        u.ProfileURL,
		Title:             u.Title,
		UserType:          u.UserType,
		PreferredLanguage: u.PreferredLanguage,
		Locale:            u.Locale,
		Timezone:          u.Timezone,
		Active:            &active,
	}
	n := scimName{GivenName: u.GivenName, FamilyName: u.FamilyName, MiddleName: u.MiddleName,
		HonorificPrefix: u.HonorificPrefix, HonorificSuffix: u.HonorificSuffix}
	if n != (scimName{}) {
		b.Name = &n
	}
	if u.Email != "" {
		t := u.EmailType
		if t == "" {
			t = "work"
		}
		b.Emails = []scimMulti{{Value: u.Email, Type: t, Primary: true}}
	}
	if u.PhoneNumber != "" {
		b.PhoneNumbers = []scimMulti{{Value: u.PhoneNumber, Type: u.PhoneType}}
	}
	if u.Address != nil && *u.Address != (scim.Address{}) {
		a := u.Address
		b.Addresses = []scimAddress{{Formatted: a.Formatted, StreetAddress: a.StreetAddress, Locality: a.Locality,
			Region: a.Region, PostalCode: a.PostalCode, Country: a.Country, Type: a.Type}}
	}
	e := scimEnterprise{EmployeeNumber: u.Enterprise.EmployeeNumber, CostCenter: u.Enterprise.CostCenter,
		Organization: u.Enterprise.Organization, Division: u.Enterprise.Division, Department: u.Enterprise.Department}
	if managerID != "" {
		e.Manager = &scimValue{Value: managerID}
	}
	if e != (scimEnterprise{}) {
		b.Enterprise = &e
		b.Schemas = append(b.Schemas, SchemaEnterprise)
	}
	return b
}

// toTarget maps a user read from the target back to the model, every row of the attribute
// table from the field its SCIM path names; Enterprise.Manager is the manager's target id.
func (s *scimUser) toTarget() scim.TargetUser {
	t := scim.TargetUser{ID: s.ID, User: scim.User{Active: s.Active == nil || *s.Active}, Created: s.Meta.created()}
	v := reflect.ValueOf(s).Elem()
	for _, r := range scimRows {
		r.attr.Set(&t.User, r.get(v))
	}
	return t
}

// CreateUser creates u (POST /Users) with managerID as its manager's target id ("" for none)
// and returns the new user's id. A duplicate userName fails with an error matching ErrConflict.
func (c *Client) CreateUser(ctx context.Context, u scim.User, managerID string) (string, error) {
	var out scimUser
	if err := c.call(ctx, "CreateUser", "POST", "/Users", nil, userBody(u, managerID), &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("scim: POST /Users: the answer carries no id for user %s", quote(u.UserName))
	}
	return out.ID, nil
}

// ReplaceUser replaces every attribute of user id with u (PUT /Users/{id}); attributes empty in
// u are cleared on the target.
func (c *Client) ReplaceUser(ctx context.Context, id string, u scim.User, managerID string) error {
	if id == "" {
		return fmt.Errorf("scim: replace user %s: empty id", quote(u.UserName))
	}
	return c.call(ctx, "ReplaceUser", "PUT", "/Users/"+url.PathEscape(id), nil, userBody(u, managerID), nil)
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

// SetUserActive enables or disables user id (PATCH replace active).
func (c *Client) SetUserActive(ctx context.Context, id string, active bool) error {
	if id == "" {
		return fmt.Errorf("scim: set user active: empty id")
	}
	body := patchRequest{Schemas: []string{SchemaPatchOp}, Operations: []patchOp{{Op: "replace", Path: "active", Value: active}}}
	return c.call(ctx, "PatchUser", "PATCH", "/Users/"+url.PathEscape(id), nil, body, nil)
}

// DeleteUser deletes user id. A user that is already gone fails with an error matching
// ErrNotFound (the caller may count it as done).
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("scim: delete user: empty id")
	}
	return c.call(ctx, "DeleteUser", "DELETE", "/Users/"+url.PathEscape(id), nil, nil, nil)
}

// FindUser returns the user whose attr ("userName" or "externalId") equals value, or nil and
// no error when there is none.
func (c *Client) FindUser(ctx context.Context, attr, value string) (*scim.TargetUser, error) {
	if attr != "userName" && attr != "externalId" {
		return nil, fmt.Errorf("scim: find user by %q: want userName or externalId", attr)
	}
	var page listResponse[scimUser]
	q := url.Values{"filter": {filterEq(attr, value)}}
	if err := c.call(ctx, "ListUsers", "GET", "/Users", q, nil, &page); err != nil {
		return nil, err
	}
	if len(page.Resources) == 0 {
		return nil, nil
	}
	t := page.Resources[0].toTarget()
	return &t, nil
}
