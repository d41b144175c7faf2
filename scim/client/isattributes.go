package client

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/identitystore/types"

	"github.com/scimbridge/scimbridge/scim"
)

// isRow reads one row of scim.UserAttributes from an identitystore user. ent is the decoded
// enterprise extension (nil when the user has none).
type isRow struct {
	attr scim.UserAttribute
	get  func(u *types.User, ent map[string]any) string
}

// isRows are the string rows of the attribute table, each read at the identitystore field its
// Store names, resolved once against types.User.
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
			get := structPath(reflect.TypeFor[types.User](), strings.Split(a.Store, "."))
			out = append(out, isRow{a, func(u *types.User, _ map[string]any) string { return get(reflect.ValueOf(u).Elem()) }})
		}
	}
	return out
}()

// structPath resolves a field path of t: pointers are followed (nil reads ""), and a slice
// reads its primary element (a field Primary true), else its first, as primary does. It panics
// on a path t does not have: the table and the SDK disagree, which every test would show.
func structPath(t reflect.Type, path []string) func(v reflect.Value) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Slice {
		next := structPath(t.Elem(), path)
		return func(v reflect.Value) string {
			v = reflect.Indirect(v)
			pick := -1
			for i := range v.Len() {
				if p := v.Index(i).FieldByName("Primary"); p.IsValid() && p.Bool() {
					pick = i
					break
				}
			}
			if pick < 0 && v.Len() > 0 {
				pick = 0
			}
			if pick < 0 {
				return ""
			}
			return next(v.Index(pick))
		}
	}
	if len(path) == 0 {
		if t.Kind() != reflect.String {
			panic(fmt.Sprintf("identitystore: attribute table: %s is not a string", t))
		}
		return func(v reflect.Value) string {
			v = reflect.Indirect(v)
			if !v.IsValid() {
				return ""
			}
			return v.String()
		}
	}
	f, ok := t.FieldByName(path[0])
	if !ok {
		panic(fmt.Sprintf("identitystore: attribute table: %s has no field %s", t, path[0]))
	}
	next := structPath(f.Type, path[1:])
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
