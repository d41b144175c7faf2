package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Reference schemes: a Secret field's value that starts with one of these names where the value
// lives instead of holding it.
//
//	aws-secretsmanager://NAME[#json-key][?region=REGION]   NAME: a secret name or its full ARN
//	aws-ssm:///path/to/parameter[#json-key][?region=REGION] a SecureString is decrypted
//	file:///run/secrets/scim-token                          trailing newlines dropped
//	env://SCIM_TOKEN                                        an environment variable
//
// A literal secret that happens to start with one of these prefixes must be given through the
// field's `*_file` sibling instead.
const (
	SchemeSecretsManager = "aws-secretsmanager"
	SchemeSSM            = "aws-ssm"
	SchemeFile           = "file"
	SchemeEnv            = "env"
)

// ErrBadRef is wrapped by every error about a reference that cannot be parsed.
var ErrBadRef = errors.New("invalid secret reference")

// ErrNotFound is wrapped when the referenced variable, secret, parameter or JSON key does not exist.
var ErrNotFound = errors.New("secret not found")

// Ref is a parsed secret reference. It names where a secret lives, never the secret itself, so it
// may appear in messages.
type Ref struct {
	// Scheme is one of the Scheme* constants.
	Scheme string
	// Name is the secret's name or ARN, the parameter's name, the file's path or the variable.
	Name string
	// Key, when set, picks one string field out of a JSON object value.
	Key string
	// Region overrides the AWS region (taken from an ARN when Name is one).
	Region string
}

// IsRef reports whether v is written as a secret reference (it may still fail to parse).
func IsRef(v string) bool {
	for _, s := range []string{SchemeSecretsManager, SchemeSSM, SchemeFile, SchemeEnv} {
		if strings.HasPrefix(v, s+"://") {
			return true
		}
	}
	return false
}

// ParseRef parses a secret reference. The error names the reference's scheme and shape, never
// the text after it, in case a literal secret was mistaken for a reference.
func ParseRef(v string) (Ref, error) {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok || !IsRef(v) {
		return Ref{}, fmt.Errorf("%w: expected aws-secretsmanager://, aws-ssm://, file:// or env://", ErrBadRef)
	}
	r := Ref{Scheme: scheme}
	switch scheme {
	case SchemeFile:
		r.Name = rest
		if r.Name == "" {
			return Ref{}, fmt.Errorf("%w: file:// needs a path", ErrBadRef)
		}
		return r, nil
	case SchemeEnv:
		r.Name = rest
		if r.Name == "" || strings.ContainsAny(r.Name, "=\x00") {
			return Ref{}, fmt.Errorf("%w: env:// needs a variable name", ErrBadRef)
		}
		return r, nil
	}
	// AWS references: NAME[#key][?region=...] (the query may also stand before the fragment).
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		q := rest[i+1:]
		rest = rest[:i]
		if j := strings.IndexByte(q, '#'); j >= 0 {
			rest += q[j:]
			q = q[:j]
		}
		vals, err := url.ParseQuery(q)
		if err != nil {
			return Ref{}, fmt.Errorf("%w: %s:// query: %w", ErrBadRef, scheme, err)
		}
		for k := range vals {
			if k != "region" {
				return Ref{}, fmt.Errorf("%w: %s:// knows only the query parameter region, not %q", ErrBadRef, scheme, k)
			}
		}
		r.Region = vals.Get("region")
	}
	r.Name, r.Key, _ = strings.Cut(rest, "#")
	if r.Name == "" {
		return Ref{}, fmt.Errorf("%w: %s:// needs a name", ErrBadRef, scheme)
	}
	if strings.HasPrefix(r.Name, "arn:") {
		// arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE
		parts := strings.SplitN(r.Name, ":", 6)
		if len(parts) != 6 || parts[3] == "" {
			return Ref{}, fmt.Errorf("%w: %s:// ARN has no region", ErrBadRef, scheme)
		}
		if r.Region == "" {
			r.Region = parts[3]
		}
	}
	return r, nil
}

// String renders the reference (it holds no secret).
func (r Ref) String() string {
	s := r.Scheme + "://" + r.Name
	if r.Key != "" {
		s += "#" + r.Key
	}
	if r.Region != "" && !strings.HasPrefix(r.Name, "arn:") {
		s += "?region=" + r.Region
	}
	return s
}

// pickKey returns the value of key in a JSON object document; numbers and booleans are given as
// their JSON text. Errors never include the document.
func pickKey(doc, key string) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &obj); err != nil {
		return "", fmt.Errorf("value is not a JSON object, so #%s cannot be picked", key)
	}
	raw, ok := obj[key]
	if !ok {
		return "", fmt.Errorf("JSON key %q: %w", key, ErrNotFound)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("JSON key %q is not readable", key)
	}
	switch v.(type) {
	case float64, bool:
		return string(raw), nil
	}
	return "", fmt.Errorf("JSON key %q holds an object, a list or null, not a string", key)
}
