package config

import (
	"fmt"
	"reflect"
	"strings"
)

// validateEnums checks every field of v (a struct, recursively) whose struct tag lists the values
// it may take, enum:"a,b,c": a key added with such a tag in any section is checked without a line
// of code here. An empty value is unset (setDefaults fills in the defaults before Validate).
func validateEnums(v reflect.Value, path string) []error {
	var errs []error
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		key := path
		if !strings.Contains(opts, "inline") {
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			key = join(path, name)
		}
		fv := v.Field(i)
		if allowed, ok := f.Tag.Lookup("enum"); ok && fv.Kind() == reflect.String {
			if err := checkEnum(key, fv.String(), strings.Split(allowed, ",")); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		for fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				break
			}
			fv = fv.Elem()
		}
		if fv.Kind() == reflect.Struct && !isLeaf(fv.Type()) {
			errs = append(errs, validateEnums(fv, key)...)
		}
	}
	return errs
}

// checkEnum reports a value outside allowed, suggesting the nearest allowed value.
func checkEnum(key, value string, allowed []string) error {
	if value == "" {
		return nil
	}
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	msg := fmt.Sprintf("%s: expected one of %s, not %q", key, strings.Join(allowed, ", "), value)
	if s := closest(value, allowed); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Errorf("%s", msg)
}
