package client

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/identitystore/types"

	"github.com/scimbridge/scimbridge/scim"
)

// Both readers fill a user from the attribute table: each row is read at the field its SCIM Path
// (scimUser, by JSON name) or its identitystore Store (types.User, by Go name) names, a path
// resolved once here against the type.

// isRow reads one row of scim.UserAttributes from an identitystore user. ent is the decoded
// enterprise extension (nil when the user has none).
type isRow struct {
	attr scim.UserAttribute
	get  func(u *types.User, ent map[string]any) string
}

// isRows are the string rows of the attribute table as identitystore holds them.
var isRows = func() []isRow {
	var out []isRow
	for _, a := range scim.UserAttributes() {
		switch {
		case a.Bool:
			continue // active: from UserStatus, read by isUser
		case a.Store == "ExternalIds":
			out = append(out, isRow{a, func(u *types.User, _ map[string]any) string { return pickExternalID(u.ExternalIds) }})
		case strings.HasPrefix(a.Store, "Extensions."+enterpriseExtension+"."):
			path := strings.Split(strings.TrimPrefix(a.Store, "Extensions."+enterpriseExtension+"."), ".")
			out = append(out, isRow{a, func(_ *types.User, ent map[string]any) string { return documentString(ent, path) }})
		default:
			get := structPath(reflect.TypeFor[types.User](), strings.Split(a.Store, "."), reflect.Type.FieldByName)
			out = append(out, isRow{a, func(u *types.User, _ map[string]any) string { return get(reflect.ValueOf(u).Elem()) }})
		}
	}
	return out
}()

// scimRow reads one row of scim.UserAttributes from a user read over SCIM.
type scimRow struct {
	attr scim.UserAttribute
	get  func(v reflect.Value) string
}

// scimRows are the string rows of the attribute table as the SCIM wire form holds them; the
// enterprise attributes, which the table names without their schema, are read in the extension.
var scimRows = func() []scimRow {
	t := reflect.TypeFor[scimUser]()
	var out []scimRow
	for _, a := range scim.UserAttributes() {
		if a.Bool {
			continue // active: a *bool, read by toTarget
		}
		path := strings.Split(a.Path, ".")
		if _, ok := jsonField(t, path[0]); !ok {
			path = append([]string{SchemaEnterprise}, path...)
		}
		out = append(out, scimRow{a, structPath(t, path, jsonField)})
	}
	return out
}()

// jsonField finds the field of t whose JSON name is name.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// structPath resolves a field path of t, each name found by field: pointers are followed (nil
// reads ""), a slice reads its primary element (a field Primary true), else its first (the model
// keeps one value of each multi-valued attribute, as Identity Center does), and a path that ends
// on a struct reads its value field. It panics on a path t
// does not have: the table and the wire form disagree, which every test would show.
func structPath(t reflect.Type, path []string, field func(reflect.Type, string) (reflect.StructField, bool)) func(v reflect.Value) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice:
		next := structPath(t.Elem(), path, field)
		p, ok := t.Elem().FieldByName("Primary")
		if !ok || p.Type.Kind() != reflect.Bool {
			panic(fmt.Sprintf("client: attribute table: %s has no field Primary", t.Elem()))
		}
		return func(v reflect.Value) string {
			if v.Len() == 0 {
				return ""
			}
			pick := 0
			for i := range v.Len() {
				if v.Index(i).FieldByIndex(p.Index).Bool() {
					pick = i
					break
				}
			}
			return next(v.Index(pick))
		}
	case len(path) == 0 && t.Kind() == reflect.Struct:
		return structPath(t, []string{"value"}, field)
	case len(path) == 0:
		if t.Kind() != reflect.String {
			panic(fmt.Sprintf("client: attribute table: %s is not a string", t))
		}
		return func(v reflect.Value) string {
			if v = reflect.Indirect(v); !v.IsValid() {
				return ""
			}
			return v.String()
		}
	}
	f, ok := field(t, path[0])
	if !ok {
		panic(fmt.Sprintf("client: attribute table: %s has no field %s", t, path[0]))
	}
	next := structPath(f.Type, path[1:], field)
	return func(v reflect.Value) string {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return ""
			}
			v = v.Elem()
		}
		return next(v.FieldByIndex(f.Index))
	}
}

// documentString reads a string at path in a decoded document; a string where a mapping is
// expected is taken leniently as the value (the manager as a plain id instead of {"value": id}).
func documentString(m map[string]any, path []string) string {
	for i, k := range path {
		switch v := m[k].(type) {
		case string:
			return v
		case map[string]any:
			if i == len(path)-1 {
				return ""
			}
			m = v
		default:
			return ""
		}
	}
	return ""
}
