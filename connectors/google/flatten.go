package google

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	admin "google.golang.org/api/admin/directory/v1"

	"github.com/scimbridge/scimbridge/connectors"
)

// userFields are the user fields read (a partial response): what the attributes below need.
const userFields = "id,primaryEmail,aliases,nonEditableAliases,name,suspended,archived,isAdmin," +
	"orgUnitPath,customerId,organizations,externalIds,relations,phones,addresses,emails,locations,languages"

// groupFields and memberFields are the group and member fields read.
const (
	groupFields  = "id,email,name,description,aliases,nonEditableAliases,directMembersCount"
	memberFields = "id,email,type,status,role"
)

// attrs collects multi-valued attributes, skipping empty values.
type attrs map[string][]string

func (a attrs) add(name string, values ...string) {
	for _, v := range values {
		if v != "" {
			a[name] = append(a[name], v)
		}
	}
}

// userEntry flattens a Directory API user into an Entry. Lists of objects (organizations,
// phones, addresses, ...) give one attribute per field, primary object first, plus
// "<list>.<type>" for values keyed by their type (phones.mobile, externalIds.organization,
// relations.manager).
func userEntry(u *admin.User) (connectors.Entry, error) {
	a := attrs{}
	a.add("id", u.Id)
	a.add("primaryEmail", u.PrimaryEmail)
	a.add("aliases", u.Aliases...)
	a.add("nonEditableAliases", u.NonEditableAliases...)
	if n := u.Name; n != nil {
		a.add("name.givenName", n.GivenName)
		a.add("name.familyName", n.FamilyName)
		a.add("name.fullName", n.FullName)
		a.add("name.displayName", n.DisplayName)
	}
	a.add("suspended", strconv.FormatBool(u.Suspended))
	a.add("archived", strconv.FormatBool(u.Archived))
	a.add("isAdmin", strconv.FormatBool(u.IsAdmin))
	a.add("orgUnitPath", u.OrgUnitPath)
	a.add("customerId", u.CustomerId)
	lists := []struct {
		name  string
		value any
	}{
		{"organizations", u.Organizations}, {"externalIds", u.ExternalIds}, {"relations", u.Relations},
		{"phones", u.Phones}, {"addresses", u.Addresses}, {"emails", u.Emails},
		{"locations", u.Locations}, {"languages", u.Languages},
	}
	for _, l := range lists {
		if err := addList(a, l.name, l.value); err != nil {
			return connectors.Entry{}, fmt.Errorf("google: user %s: %s: %w", u.Id, l.name, err)
		}
	}
	schemas := make([]string, 0, len(u.CustomSchemas))
	for s := range u.CustomSchemas {
		schemas = append(schemas, s)
	}
	sort.Strings(schemas)
	for _, s := range schemas {
		var fields map[string]any
		if err := json.Unmarshal(u.CustomSchemas[s], &fields); err != nil {
			return connectors.Entry{}, fmt.Errorf("google: user %s: custom schema %s: %w", u.Id, s, err)
		}
		for f, v := range fields {
			addCustom(a, "customSchemas."+s+"."+f, v)
		}
	}
	keys := append([]string{u.PrimaryEmail}, u.Aliases...)
	keys = append(keys, u.NonEditableAliases...)
	return connectors.Entry{ID: u.Id, Keys: compact(keys), Attributes: a}, nil
}

// addList flattens a list of objects (as the client decoded it: []any of map[string]any).
func addList(a attrs, name string, v any) error {
	if v == nil {
		return nil
	}
	items, ok := v.([]any)
	if !ok {
		return fmt.Errorf("want a list, got %T", v)
	}
	objs := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			objs = append(objs, m)
		}
	}
	// Primary first, otherwise in Google's order.
	sort.SliceStable(objs, func(i, j int) bool { return objs[i]["primary"] == true && objs[j]["primary"] != true })
	for _, o := range objs {
		fields := make([]string, 0, len(o))
		for f := range o {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		for _, f := range fields {
			if s := scalar(o[f]); s != "" && f != "primary" {
				a.add(name+"."+f, s)
			}
		}
		// Values by type: phones.work, relations.manager, externalIds.organization; a custom
		// type is used as written.
		typ, _ := o["type"].(string)
		if typ == "custom" {
			typ, _ = o["customType"].(string)
		}
		val := scalar(o["value"])
		if val == "" {
			val = scalar(o["address"])
		}
		if typ != "" && val != "" {
			a.add(name+"."+typ, val)
		}
	}
	return nil
}

// addCustom flattens a custom-schema field: a scalar, or a multi-valued list of {type, value}.
func addCustom(a attrs, name string, v any) {
	switch x := v.(type) {
	case []any:
		for _, it := range x {
			if m, ok := it.(map[string]any); ok {
				a.add(name, scalar(m["value"]))
				if t, ok := m["type"].(string); ok && t != "" {
					if t == "custom" {
						t, _ = m["customType"].(string)
					}
					a.add(name+"."+t, scalar(m["value"]))
				}
				continue
			}
			a.add(name, scalar(it))
		}
	default:
		a.add(name, scalar(x))
	}
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	return ""
}

// groupEntry turns a group and its member references into an Entry.
func groupEntry(g *admin.Group, members []string) connectors.Entry {
	a := attrs{}
	a.add("id", g.Id)
	a.add("email", g.Email)
	a.add("name", g.Name)
	a.add("description", g.Description)
	a.add("aliases", g.Aliases...)
	a.add("nonEditableAliases", g.NonEditableAliases...)
	a.add("directMembersCount", strconv.FormatInt(g.DirectMembersCount, 10))
	keys := append([]string{g.Email}, g.Aliases...)
	keys = append(keys, g.NonEditableAliases...)
	return connectors.Entry{ID: g.Id, Keys: compact(keys), Attributes: a, Members: members}
}

// compact drops empty and repeated values (case-insensitively), keeping the first spelling.
func compact(v []string) []string {
	out := make([]string, 0, len(v))
	for _, s := range v {
		if s != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, s) }) {
			out = append(out, s)
		}
	}
	return out
}
