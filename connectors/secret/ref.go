package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
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
		if !strings.HasPrefix(r.Name, "/") {
			// file://run/x names the host "run" in a URL; the path was meant to be /run/x.
			return Ref{}, fmt.Errorf("%w: file:// needs an absolute path, written with three slashes (file:///run/secrets/token)", ErrBadRef)
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

// schemeLike matches a value that starts the way a URI does: a scheme (RFC 3986: a letter, then
// letters, digits, "+", "-" or ".") and a colon.
var schemeLike = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]{0,63}):`)

// refForms is how each reference scheme is written, for messages.
var refForms = map[string]string{
	SchemeSecretsManager: "aws-secretsmanager://NAME[#json-key]",
	SchemeSSM:            "aws-ssm:///path/to/parameter[#json-key]",
	SchemeFile:           "file:///absolute/path",
	SchemeEnv:            "env://VARIABLE",
}

// CheckValue reports whether v, the value of a Secret field as written in the configuration, can
// be used as it is: a literal secret, or a reference that parses. It returns an error wrapping
// ErrBadRef for a reference that does not parse, and for a value that looks like a reference but
// is none, so that a typo is not silently sent as the secret itself:
//
//   - a known scheme written another way: file:/run/x (one slash), FILE:///x, env:VAR;
//   - a scheme one or two letters away from a known one: aws-secretmanager://NAME, aws-sm:///p;
//   - any other scheme followed by "/", as URLs are written: vault://..., https://..., s3:/...
//
// Other values containing a colon ("Pass:word1") are literals. A literal that must start like a
// reference goes in the field's *_file sibling instead. The error names a scheme only when it
// is, or is close to, a known one, and never shows the rest of the value.
func CheckValue(v string) error {
	if v == "" {
		return nil
	}
	if IsRef(v) {
		_, err := ParseRef(v)
		return err
	}
	m := schemeLike.FindStringSubmatch(v)
	if m == nil {
		return nil
	}
	scheme, rest := m[1], v[len(m[0]):]
	lower := strings.ToLower(scheme)
	if form, ok := refForms[lower]; ok {
		return fmt.Errorf("%w: %s references are written %s", ErrBadRef, lower, form)
	}
	if near := nearScheme(lower); near != "" {
		return fmt.Errorf("%w: unknown scheme %q; did you mean %s?", ErrBadRef, scheme, refForms[near])
	}
	if strings.HasPrefix(rest, "/") {
		what := "an unknown scheme"
		if strings.HasPrefix(rest, "//") && len(scheme) <= 20 {
			what = fmt.Sprintf("the unknown scheme %q", scheme) // a URL's scheme, not secret text
		}
		return fmt.Errorf("%w: the value is written like a URL or reference, with %s (known: aws-secretsmanager://, aws-ssm://, file://, env://)", ErrBadRef, what)
	}
	return nil
}

// nearScheme returns the known scheme within a small edit distance of s (none for the short
// ones, env and file, whose near misses are too likely in a password), or "".
func nearScheme(s string) string {
	for _, k := range []string{SchemeSecretsManager, SchemeSSM, SchemeFile, SchemeEnv} {
		if d := editDistance(s, k); d > 0 && d <= len(k)/6 {
			return k
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (bytes; schemes are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
