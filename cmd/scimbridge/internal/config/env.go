package config

//go:generate go test -run ^(TestEnvReference|TestHelmValuesSchema)$ -update .

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

// EnvPrefix starts every environment variable that overrides a config key.
const EnvPrefix = "SCIMBRIDGE_"

// EnvVar describes one config key that an environment variable can set.
type EnvVar struct {
	// Key is the dotted config key, such as target.scim_url.
	Key string
	// Name is the environment variable, such as SCIMBRIDGE_TARGET_SCIM_URL.
	Name string
	// Type is how the value is written: string, secret, int, number, bool, duration, expression,
	// or list/map (given whole as YAML or JSON).
	Type string
	// Default is the value used when neither the file nor the environment sets the key ("" when
	// there is none), or for a default that depends on other keys, its description.
	Default string

	path []int // field indexes from Config
}

var (
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	secretType      = reflect.TypeFor[secret.Secret]()
	durationType    = reflect.TypeFor[Duration]()
	stdDurationType = reflect.TypeFor[time.Duration]()
)

// EnvVars lists every config key with its environment variable, in the order of the Config
// struct. Nested keys are joined with "_" and uppercased: target.scim_url is
// SCIMBRIDGE_TARGET_SCIM_URL. Lists and maps are set whole, as YAML or JSON; their elements have
// no variables of their own.
func EnvVars() []EnvVar {
	var out []EnvVar
	walkKeys(reflect.TypeFor[Config](), nil, nil, &out)
	defaults := defaultValues()
	for i := range out {
		out[i].Default = defaults[out[i].Key]
	}
	return out
}

// walkKeys appends the leaf keys of struct type t.
func walkKeys(t reflect.Type, keys []string, path []int, out *[]EnvVar) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		p := append(slices.Clone(path), i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			walkKeys(ft, keys, p, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		k := append(slices.Clone(keys), name)
		if ft.Kind() == reflect.Struct && !isLeaf(ft) {
			walkKeys(ft, k, p, out)
			continue
		}
		*out = append(*out, EnvVar{
			Key:  strings.Join(k, "."),
			Name: EnvPrefix + strings.ToUpper(strings.Join(k, "_")),
			Type: typeName(ft),
			path: p,
		})
	}
}

// isLeaf reports whether a struct type is one value (it decodes itself) rather than a section.
func isLeaf(t reflect.Type) bool {
	return t.Implements(yamlUnmarshaler) || reflect.PointerTo(t).Implements(yamlUnmarshaler)
}

func typeName(t reflect.Type) string {
	switch {
	case t == secretType:
		return "secret"
	case t == durationType || t == stdDurationType:
		return "duration"
	case t.Kind() == reflect.Struct:
		return strings.ToLower(t.Name())
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map:
		return "map"
	}
	return t.Kind().String()
}

// applyEnv sets every key whose SCIMBRIDGE_* variable is present in env (KEY=VALUE pairs, as
// os.Environ gives them), over what the file said. A variable under a config section that names
// no key (a typo such as SCIMBRIDGE_TARGET_SCIM_UR) is an error, as an unknown key in the file
// is. Every problem comes back at once; no message shows a value.
func (c *Config) applyEnv(env []string) error {
	vars := EnvVars()
	byName := make(map[string]EnvVar, len(vars))
	sections := map[string]bool{}
	for _, v := range vars {
		byName[v.Name] = v
		top, _, _ := strings.Cut(v.Key, ".")
		sections[EnvPrefix+strings.ToUpper(top)] = true
	}
	var errs []error
	root := reflect.ValueOf(c).Elem()
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		v, known := byName[name]
		if !known {
			for s := range sections {
				if name == s || strings.HasPrefix(name, s+"_") {
					errs = append(errs, fmt.Errorf("environment %s: no config key has this name (see deploy/CONFIG.md)", name))
					break
				}
			}
			continue
		}
		if err := setField(root, v.path, val); err != nil {
			errs = append(errs, fmt.Errorf("environment %s (%s): %w", name, v.Key, err))
		}
	}
	return errors.Join(errs...)
}

// setField walks path from root, allocating nil pointers on the way, and sets the leaf from text.
func setField(root reflect.Value, path []int, text string) error {
	v := root
	for _, i := range path {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	target := v
	if v.Kind() == reflect.Pointer {
		target = reflect.New(v.Type().Elem()).Elem()
	}
	if err := decodeText(target, text); err != nil {
		return err
	}
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(target)
		v.Set(p)
	}
	return nil
}

// decodeText sets v from an environment value: strings (and secrets) as they are, scalars as a
// YAML scalar (so durations, numbers and booleans read as in the file), lists and maps as a YAML
// or JSON document.
func decodeText(v reflect.Value, text string) error {
	t := v.Type()
	switch {
	case isLeaf(t):
		return scalarNode(text).Decode(v.Addr().Interface())
	case t.Kind() == reflect.String:
		v.SetString(text)
		return nil
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Map:
		n := reflect.New(t)
		if err := yaml.Unmarshal([]byte(text), n.Interface()); err != nil {
			return fmt.Errorf("not a YAML or JSON %s: %w", typeName(t), err)
		}
		v.Set(n.Elem())
		return nil
	}
	n := reflect.New(t)
	if err := scalarNode(text).Decode(n.Interface()); err != nil {
		return fmt.Errorf("not a valid %s", typeName(t))
	}
	v.Set(n.Elem())
	return nil
}

func scalarNode(text string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: text, Line: 1, Column: 1}
}

// defaultValues returns the defaults setDefaults fills in, rendered as YAML scalars, by key, and
// the description of those that depend on other keys.
func defaultValues() map[string]string {
	out := map[string]string{}
	c := &Config{}
	c.setDefaults()
	var vars []EnvVar
	walkKeys(reflect.TypeFor[Config](), nil, nil, &vars)
	root := reflect.ValueOf(c).Elem()
	for _, ev := range vars {
		v, ok := fieldAt(root, ev.path)
		if !ok || v.IsZero() {
			continue
		}
		b, err := yaml.Marshal(v.Interface())
		if err != nil {
			continue
		}
		out[ev.Key] = zeroUnits.ReplaceAllString(strings.TrimSpace(string(b)), "$1")
	}
	maps.Copy(out, connectorDefaults())
	maps.Copy(out, describedDefaults)
	return out
}

// zeroUnits drops the empty trailing units of a duration: 3h0m0s is shown as 3h, 5m0s as 5m.
var zeroUnits = regexp.MustCompile(`^(\d+[hm])(?:0m)?0s$`)

// fieldAt follows path without allocating; ok is false at a nil pointer.
func fieldAt(v reflect.Value, path []int) (reflect.Value, bool) {
	for _, i := range path {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}, false
		}
		v = v.Elem()
	}
	return v, true
}

// WriteEnvReference writes the Markdown reference of every config key and its environment
// variable (deploy/CONFIG.md is this output).
func WriteEnvReference(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated by ` + "`go generate ./cmd/scimbridge/internal/config`" + `; do not edit. -->

Every key of the configuration file can also be set by an environment variable: ` + "`SCIMBRIDGE_`" + `
and the key's path joined with ` + "`_`" + `, uppercased (` + "`target.scim_url`" + ` is
` + "`SCIMBRIDGE_TARGET_SCIM_URL`" + `). A variable wins over the file; it is applied after the file is
read (and its ` + "`${ENV}`" + ` expanded) and before the config is checked. Lists and maps are set whole,
as YAML or JSON (` + "`SCIMBRIDGE_SOURCE_GOOGLE_DELEGATES='[\"a@x.iam.gserviceaccount.com\"]'`" + `); their
elements have no variables of their own. A ` + "`SCIMBRIDGE_`" + ` variable under a known section that
names no key is an error, as an unknown key in the file is.

A ` + "`secret`" + ` may be written inline or as a reference, resolved at start and again on use (AWS values
are cached for a minute), so a rotated value is picked up without a restart:
` + "`aws-secretsmanager://NAME#json-key`" + `, ` + "`aws-ssm:///path`" + `, ` + "`file:///path`" + `, ` + "`env://VAR`" + `.
A default left empty is none, or depends on other keys (see the package documentation).

| key | environment variable | type | default |
|---|---|---|---|
`)
	for _, v := range EnvVars() {
		def := v.Default
		if _, described := describedDefaults[v.Key]; def != "" && !described {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", v.Key, v.Name, v.Type, def)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
