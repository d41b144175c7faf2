package emulator

import (
	"context"
	"fmt"
	"sort"
	"strconv"
)

// Dump is everything the emulator holds, for exact-state assertions in tests. Users and groups
// are in creation order; group members and memberships are sorted by id.
type Dump struct {
	Users       []DumpUser       `json:"users"`
	Groups      []DumpGroup      `json:"groups"`
	Memberships []DumpMembership `json:"memberships"`
}

// DumpUser is one stored user. ExternalID is empty for users not created through SCIM.
// Enterprise.Manager is the manager's user id.
type DumpUser struct {
	ID                string         `json:"id"`
	ExternalID        string         `json:"externalId,omitempty"`
	UserName          string         `json:"userName"`
	DisplayName       string         `json:"displayName,omitempty"`
	GivenName         string         `json:"givenName,omitempty"`
	FamilyName        string         `json:"familyName,omitempty"`
	MiddleName        string         `json:"middleName,omitempty"`
	HonorificPrefix   string         `json:"honorificPrefix,omitempty"`
	HonorificSuffix   string         `json:"honorificSuffix,omitempty"`
	NickName          string         `json:"nickName,omitempty"`
	ProfileURL        string         `json:"profileUrl,omitempty"`
	Title             string         `json:"title,omitempty"`
	UserType          string         `json:"userType,omitempty"`
	PreferredLanguage string         `json:"preferredLanguage,omitempty"`
	Locale            string         `json:"locale,omitempty"`
	Timezone          string         `json:"timezone,omitempty"`
	Email             string         `json:"email,omitempty"`
	EmailType         string         `json:"emailType,omitempty"`
	PhoneNumber       string         `json:"phoneNumber,omitempty"`
	PhoneType         string         `json:"phoneType,omitempty"`
	Role              string         `json:"role,omitempty"`
	Address           *DumpAddress   `json:"address,omitempty"`
	Active            bool           `json:"active"`
	Enterprise        DumpEnterprise `json:"enterprise,omitzero"`
	// CreatedBy is "scim" or "identitystore".
	CreatedBy string `json:"createdBy"`
	// Revision counts the writes to the user, starting at 1.
	Revision int64 `json:"revision"`
}

// DumpAddress is a user's single address.
type DumpAddress struct {
	Formatted     string `json:"formatted,omitempty"`
	StreetAddress string `json:"streetAddress,omitempty"`
	Locality      string `json:"locality,omitempty"`
	Region        string `json:"region,omitempty"`
	PostalCode    string `json:"postalCode,omitempty"`
	Country       string `json:"country,omitempty"`
	Type          string `json:"type,omitempty"`
}

// DumpEnterprise holds the enterprise extension attributes of a user.
type DumpEnterprise struct {
	EmployeeNumber string `json:"employeeNumber,omitempty"`
	CostCenter     string `json:"costCenter,omitempty"`
	Organization   string `json:"organization,omitempty"`
	Division       string `json:"division,omitempty"`
	Department     string `json:"department,omitempty"`
	Manager        string `json:"manager,omitempty"`
}

// DumpGroup is one stored group with its members' user ids.
type DumpGroup struct {
	ID          string   `json:"id"`
	ExternalID  string   `json:"externalId,omitempty"`
	DisplayName string   `json:"displayName"`
	Description string   `json:"description,omitempty"`
	Members     []string `json:"members,omitempty"`
	CreatedBy   string   `json:"createdBy"`
}

// DumpMembership is one group membership.
type DumpMembership struct {
	GroupID      string `json:"groupId"`
	UserID       string `json:"userId"`
	MembershipID string `json:"membershipId"`
}

func dumpUser(u *userRec) DumpUser {
	d := &u.Doc
	out := DumpUser{ID: u.ID, ExternalID: d.ExternalID, UserName: d.UserName, DisplayName: d.DisplayName,
		NickName: d.NickName, ProfileURL: d.ProfileURL, Title: d.Title, UserType: d.UserType,
		PreferredLanguage: d.PreferredLanguage, Locale: d.Locale, Timezone: d.Timezone, Active: d.active(),
		CreatedBy: u.CreatedBy, Revision: u.Revision}
	if n := d.Name; n != nil {
		out.GivenName, out.FamilyName, out.MiddleName = n.GivenName, n.FamilyName, n.MiddleName
		out.HonorificPrefix, out.HonorificSuffix = n.HonorificPrefix, n.HonorificSuffix
	}
	if len(d.Emails) > 0 {
		out.Email, out.EmailType = d.Emails[0].Value, d.Emails[0].Type
	}
	if len(d.PhoneNumbers) > 0 {
		out.PhoneNumber, out.PhoneType = d.PhoneNumbers[0].Value, d.PhoneNumbers[0].Type
	}
	if len(d.Roles) > 0 {
		out.Role = d.Roles[0].Value
	}
	if len(d.Addresses) > 0 {
		a := d.Addresses[0]
		out.Address = &DumpAddress{Formatted: a.Formatted, StreetAddress: a.StreetAddress, Locality: a.Locality,
			Region: a.Region, PostalCode: a.PostalCode, Country: a.Country, Type: a.Type}
	}
	if x := d.Enterprise; x != nil {
		out.Enterprise = DumpEnterprise{EmployeeNumber: x.EmployeeNumber, CostCenter: x.CostCenter,
			Organization: x.Organization, Division: x.Division, Department: x.Department}
		if x.Manager != nil {
			out.Enterprise.Manager = x.Manager.Value
		}
	}
	return out
}

// Dump reads every user, group and membership.
func (e *Emulator) Dump() (Dump, error) {
	ctx := context.Background()
	var d Dump
	for key := ""; ; {
		users, next, err := e.pageUsers(ctx, userQuery{kind: "all"}, key, 1000)
		if err != nil {
			return d, fmt.Errorf("emulator: dump users: %w", err)
		}
		for i := range users {
			d.Users = append(d.Users, dumpUser(&users[i]))
		}
		if next == "" {
			break
		}
		key = next
	}
	index := map[string]int{}
	for key := ""; ; {
		groups, next, err := e.pageGroups(ctx, groupQuery{kind: "all"}, key, 1000)
		if err != nil {
			return d, fmt.Errorf("emulator: dump groups: %w", err)
		}
		for _, g := range groups {
			index[g.ID] = len(d.Groups)
			d.Groups = append(d.Groups, DumpGroup{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.DisplayName,
				Description: g.Description, CreatedBy: g.CreatedBy})
		}
		if next == "" {
			break
		}
		key = next
	}
	ms, err := e.store.queryMembers(ctx, nil, "membershipsAll")
	if err != nil {
		return d, fmt.Errorf("emulator: dump memberships: %w", err)
	}
	for _, m := range ms {
		d.Memberships = append(d.Memberships, DumpMembership{GroupID: m.GroupID, UserID: m.UserID, MembershipID: m.MembershipID})
		if i, ok := index[m.GroupID]; ok {
			d.Groups[i].Members = append(d.Groups[i].Members, m.UserID)
		}
	}
	for i := range d.Groups {
		sort.Strings(d.Groups[i].Members)
	}
	return d, nil
}

// UserByUserName returns the dumped user with the given userName (case-insensitively), if any.
func (d Dump) UserByUserName(name string) (DumpUser, bool) {
	for _, u := range d.Users {
		if equalFold(u.UserName, name) {
			return u, true
		}
	}
	return DumpUser{}, false
}

// GroupByDisplayName returns the dumped group with the given displayName, if any.
func (d Dump) GroupByDisplayName(name string) (DumpGroup, bool) {
	for _, g := range d.Groups {
		if equalFold(g.DisplayName, name) {
			return g, true
		}
	}
	return DumpGroup{}, false
}

// Counts returns the numbers of users, groups and memberships, as "users=N groups=N memberships=N".
func (d Dump) Counts() string {
	return "users=" + strconv.Itoa(len(d.Users)) + " groups=" + strconv.Itoa(len(d.Groups)) +
		" memberships=" + strconv.Itoa(len(d.Memberships))
}
