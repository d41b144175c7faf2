package scim

import "strings"

// UserAttribute is one attribute of User: the one place that names it for the configuration,
// SCIM and the identitystore API, gives its limits, and reads and writes it. The mapping's
// targets, Normalize and Check, Attributes (and so the plan's diff), Explain and both readers
// walk UserAttributes instead of naming the attributes again.
type UserAttribute struct {
	// Key is the name the configuration and the mapping use (mapping.user.<Key>, the file
	// connector's keys, guards.allowClear); "" for externalId, which nothing maps.
	Key string
	// Aliases are older spellings of Key that still work, with a warning naming Key.
	Aliases []string
	// Path is the SCIM path: the name plans, problems and Attributes show.
	Path string
	// Store is the identitystore API's name of the attribute (a path of its User shape).
	Store string
	// Required attributes must be non-empty for Identity Center to take the user.
	Required bool
	// Max is the longest value, in characters.
	Max int
	// Bool is true for active, the one attribute that is not a string: Get and Set are nil.
	Bool bool
	// Address is true for the sub-attributes of the address, which Identity Center keeps as the
	// one value of the multi-valued addresses attribute.
	Address bool
	// Get reads the attribute ("" for an address of nil); Set writes it (an address is made
	// when v is not empty).
	Get func(u *User) string
	Set func(u *User, v string)
}

// userAttributes is the table; its order is the order of the mapping's targets.
var userAttributes = []UserAttribute{
	strAttr("", "externalId", "ExternalIds", true, MaxExternalIDLen, func(u *User) *string { return &u.ExternalID }),
	strAttr("userName", "userName", "UserName", true, MaxUserNameLen, func(u *User) *string { return &u.UserName }),
	strAttr("displayName", "displayName", "DisplayName", true, MaxAttributeLen, func(u *User) *string { return &u.DisplayName }),
	strAttr("givenName", "name.givenName", "Name.GivenName", true, MaxAttributeLen, func(u *User) *string { return &u.GivenName }),
	strAttr("familyName", "name.familyName", "Name.FamilyName", true, MaxAttributeLen, func(u *User) *string { return &u.FamilyName }),
	strAttr("middleName", "name.middleName", "Name.MiddleName", false, MaxAttributeLen, func(u *User) *string { return &u.MiddleName }),
	strAttr("honorificPrefix", "name.honorificPrefix", "Name.HonorificPrefix", false, MaxAttributeLen, func(u *User) *string { return &u.HonorificPrefix }),
	strAttr("honorificSuffix", "name.honorificSuffix", "Name.HonorificSuffix", false, MaxAttributeLen, func(u *User) *string { return &u.HonorificSuffix }),
	strAttr("nickName", "nickName", "NickName", false, MaxAttributeLen, func(u *User) *string { return &u.NickName }),
	strAttr("profileUrl", "profileUrl", "ProfileUrl", false, MaxAttributeLen, func(u *User) *string { return &u.ProfileURL }),
	strAttr("title", "title", "Title", false, MaxAttributeLen, func(u *User) *string { return &u.Title }),
	strAttr("userType", "userType", "UserType", false, MaxAttributeLen, func(u *User) *string { return &u.UserType }),
	strAttr("preferredLanguage", "preferredLanguage", "PreferredLanguage", false, MaxAttributeLen, func(u *User) *string { return &u.PreferredLanguage }),
	strAttr("locale", "locale", "Locale", false, MaxAttributeLen, func(u *User) *string { return &u.Locale }),
	strAttr("timezone", "timezone", "Timezone", false, MaxAttributeLen, func(u *User) *string { return &u.Timezone }),
	strAttr("email", "emails", "Emails.Value", false, MaxAttributeLen, func(u *User) *string { return &u.Email }, "emails"),
	strAttr("emailType", "emails.type", "Emails.Type", false, MaxAttributeLen, func(u *User) *string { return &u.EmailType }, "emails.type"),
	strAttr("phoneNumber", "phoneNumbers", "PhoneNumbers.Value", false, MaxAttributeLen, func(u *User) *string { return &u.PhoneNumber }, "phone", "phoneNumbers"),
	strAttr("phoneType", "phoneNumbers.type", "PhoneNumbers.Type", false, MaxAttributeLen, func(u *User) *string { return &u.PhoneType }, "phoneNumbers.type"),
	addressAttr("formatted", "Formatted", func(a *Address) *string { return &a.Formatted }),
	addressAttr("streetAddress", "StreetAddress", func(a *Address) *string { return &a.StreetAddress }),
	addressAttr("locality", "Locality", func(a *Address) *string { return &a.Locality }),
	addressAttr("region", "Region", func(a *Address) *string { return &a.Region }),
	addressAttr("postalCode", "PostalCode", func(a *Address) *string { return &a.PostalCode }),
	addressAttr("country", "Country", func(a *Address) *string { return &a.Country }),
	addressAttr("type", "Type", func(a *Address) *string { return &a.Type }),
	{Key: "active", Path: "active", Store: "UserStatus", Bool: true},
	enterpriseAttr("employeeNumber", func(e *Enterprise) *string { return &e.EmployeeNumber }),
	enterpriseAttr("costCenter", func(e *Enterprise) *string { return &e.CostCenter }),
	enterpriseAttr("organization", func(e *Enterprise) *string { return &e.Organization }),
	enterpriseAttr("division", func(e *Enterprise) *string { return &e.Division }),
	enterpriseAttr("department", func(e *Enterprise) *string { return &e.Department }),
	// In a desired snapshot the manager is a source id; its limit is that of an externalId.
	strAttr("manager", "manager", "Extensions."+enterpriseStore+".manager.value", false, MaxExternalIDLen, func(u *User) *string { return &u.Enterprise.Manager }),
}

// enterpriseStore is the identitystore name of the enterprise user extension.
const enterpriseStore = "aws:identitystore:enterprise"

func strAttr(key, path, store string, required bool, max int, field func(*User) *string, aliases ...string) UserAttribute {
	return UserAttribute{Key: key, Aliases: aliases, Path: path, Store: store, Required: required, Max: max,
		Get: func(u *User) string { return *field(u) },
		Set: func(u *User, v string) { *field(u) = v }}
}

func enterpriseAttr(key string, field func(*Enterprise) *string) UserAttribute {
	return strAttr(key, key, "Extensions."+enterpriseStore+"."+key, false, MaxAttributeLen,
		func(u *User) *string { return field(&u.Enterprise) })
}

// addressAttr makes the row of a sub-attribute of the address: key address.<sub>, path
// addresses.<sub>, with the old spelling addresses.<sub> as an alias.
func addressAttr(sub, store string, field func(*Address) *string) UserAttribute {
	return UserAttribute{Key: "address." + sub, Aliases: []string{"addresses." + sub}, Path: "addresses." + sub,
		Store: "Addresses." + store, Max: MaxAttributeLen, Address: true,
		Get: func(u *User) string {
			if u.Address == nil {
				return ""
			}
			return *field(u.Address)
		},
		Set: func(u *User, v string) {
			if u.Address == nil {
				if v == "" {
					return
				}
				u.Address = &Address{}
			}
			*field(u.Address) = v
		}}
}

// UserAttributes returns the table of user attributes, in the order of the mapping's targets.
// The caller must not change it.
func UserAttributes() []UserAttribute { return userAttributes }

// LookupUserAttribute finds an attribute by its key, case-insensitively. deprecated is true when
// name is an older spelling (an alias, or the SCIM path where it differs from the key): it still
// works, and the caller warns with the attribute's Key.
func LookupUserAttribute(name string) (a UserAttribute, deprecated, ok bool) {
	if name == "" {
		return UserAttribute{}, false, false
	}
	for _, a := range userAttributes {
		if a.Key != "" && strings.EqualFold(name, a.Key) {
			return a, false, true
		}
	}
	for _, a := range userAttributes {
		for _, al := range a.Aliases {
			if strings.EqualFold(name, al) {
				return a, true, true
			}
		}
	}
	return UserAttribute{}, false, false
}
