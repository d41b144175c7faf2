package config

import (
	"fmt"
	"reflect"

	"github.com/scimbridge/scimbridge/connectors/secret"
	"github.com/scimbridge/scimbridge/scim/state"
)

// validateSecrets checks every secret key of the config (found by type, so that a key added
// later is covered too): a value that looks like a reference must be a valid one (see
// secret.CheckValue). Each problem names its key and the *_file sibling a literal goes in; no
// message shows a value.
func (c *Config) validateSecrets() []error {
	var vars []EnvVar
	walkKeys(reflect.TypeFor[Config](), nil, nil, &vars) // not EnvVars: the defaults are not needed here
	keys := make(map[string]bool, len(vars))
	for _, v := range vars {
		keys[v.Key] = true
	}
	var errs []error
	root := reflect.ValueOf(c).Elem()
	for _, v := range vars {
		if v.Type != "secret" {
			continue
		}
		f, ok := fieldAt(root, v.path)
		if !ok {
			continue
		}
		if v.Key == "state.url" && state.IsPostgresURL(f.String()) {
			continue // a literal database URL, which looks like a reference of an unknown scheme
		}
		err := secret.CheckValue(f.String())
		switch {
		case err == nil:
		case keys[v.Key+"_file"]:
			errs = append(errs, fmt.Errorf("%s: %w (a literal value that starts this way goes in %s_file)", v.Key, err, v.Key))
		default:
			errs = append(errs, fmt.Errorf("%s: %w", v.Key, err))
		}
	}
	return errs
}
