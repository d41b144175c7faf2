package ldap

import "github.com/scimbridge/scimbridge/connectors"

// DisabledAttribute is the attribute the connector derives on Active Directory users from
// userAccountControl's ACCOUNTDISABLE bit (0x2): "true" or "false".
const DisabledAttribute = "scimbridge.disabled"

// ActiveDirectory is the default mapping of the active_directory flavour.
var ActiveDirectory = connectors.Flavour{
	Name: FlavourActiveDirectory,
	User: map[string]string{
		"userName":       `default(attr("userPrincipalName"), attr("sAMAccountName"))`,
		"displayName":    `default(attr("displayName"), attr("cn"))`,
		"givenName":      `attr("givenName")`,
		"familyName":     `attr("sn")`,
		"email":          `attr("mail")`,
		"title":          `attr("title")`,
		"phoneNumber":    `attr("telephoneNumber")`,
		"employeeNumber": `default(attr("employeeID"), attr("employeeNumber"))`,
		"department":     `attr("department")`,
		"organization":   `attr("company")`,
		"division":       `attr("division")`,
		"manager":        `attr("manager")`,
		"active":         `attr("scimbridge.disabled") != "true"`,
	},
	Group: map[string]string{
		"displayName": `default(attr("name"), attr("cn"))`,
	},
}

// OpenLDAP is the default mapping of the openldap flavour (inetOrgPerson users; groupOfNames,
// groupOfUniqueNames and posixGroup groups).
var OpenLDAP = connectors.Flavour{
	Name: FlavourOpenLDAP,
	User: map[string]string{
		"userName":       `default(attr("mail"), attr("uid"))`,
		"displayName":    `default(attr("displayName"), attr("cn"))`,
		"givenName":      `attr("givenName")`,
		"familyName":     `attr("sn")`,
		"email":          `attr("mail")`,
		"title":          `attr("title")`,
		"phoneNumber":    `attr("telephoneNumber")`,
		"employeeNumber": `attr("employeeNumber")`,
		"department":     `attr("departmentNumber")`,
		"organization":   `attr("o")`,
		"manager":        `attr("manager")`,
		"active":         `true`,
	},
	Group: map[string]string{
		"displayName": `attr("cn")`,
	},
}

// Generic is the default mapping of the generic flavour: only the most common attributes.
var Generic = connectors.Flavour{
	Name: FlavourGeneric,
	User: map[string]string{
		"userName":    `default(attr("mail"), default(attr("uid"), attr("cn")))`,
		"displayName": `default(attr("displayName"), attr("cn"))`,
		"givenName":   `attr("givenName")`,
		"familyName":  `attr("sn")`,
		"email":       `attr("mail")`,
		"active":      `true`,
	},
	Group: map[string]string{
		"displayName": `attr("cn")`,
	},
}

// Flavour returns the default mapping of the configured flavour (Generic for an unknown one,
// which Validate rejects).
func (c Config) Flavour() connectors.Flavour {
	switch c.FlavourName {
	case FlavourActiveDirectory:
		return ActiveDirectory
	case FlavourOpenLDAP:
		return OpenLDAP
	}
	return Generic
}

// defaults is what a flavour fills into an empty Config field.
type defaults struct {
	idAttribute         string
	userFilter          string
	groupFilter         string
	userAttributes      []string
	groupAttributes     []string
	keyAttributes       []string
	memberAttributes    []string
	memberUIDAttributes []string
}

var flavourDefaults = map[string]defaults{
	FlavourActiveDirectory: {
		idAttribute: "objectGUID",
		userFilter:  "(&(objectCategory=person)(objectClass=user))",
		groupFilter: "(objectClass=group)",
		userAttributes: []string{
			"objectGUID", "objectSid", "sAMAccountName", "userPrincipalName", "mail", "givenName",
			"sn", "cn", "displayName", "userAccountControl", "department", "title", "company",
			"division", "employeeID", "employeeNumber", "manager", "telephoneNumber",
		},
		groupAttributes:     []string{"objectGUID", "objectSid", "cn", "name", "sAMAccountName", "displayName", "description", "mail"},
		keyAttributes:       []string{"sAMAccountName", "userPrincipalName", "mail"},
		memberAttributes:    []string{"member"},
		memberUIDAttributes: []string{},
	},
	FlavourOpenLDAP: {
		idAttribute: "entryUUID",
		userFilter:  "(objectClass=inetOrgPerson)",
		groupFilter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
		userAttributes: []string{
			"entryUUID", "uid", "mail", "givenName", "sn", "cn", "displayName", "title",
			"telephoneNumber", "employeeNumber", "departmentNumber", "o", "manager",
		},
		groupAttributes:     []string{"entryUUID", "cn", "description", "gidNumber"},
		keyAttributes:       []string{"uid", "mail"},
		memberAttributes:    []string{"member", "uniqueMember"},
		memberUIDAttributes: []string{"memberUid"},
	},
	FlavourGeneric: {
		idAttribute:         "entryUUID",
		userFilter:          "(objectClass=person)",
		groupFilter:         "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
		userAttributes:      []string{"uid", "mail", "givenName", "sn", "cn", "displayName"},
		groupAttributes:     []string{"cn", "description"},
		keyAttributes:       []string{"uid", "mail"},
		memberAttributes:    []string{"member", "uniqueMember"},
		memberUIDAttributes: []string{"memberUid"},
	},
}
