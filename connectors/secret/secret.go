// Package secret holds configuration secrets (SCIM tokens, bind passwords, service-account keys)
// so that they never print: a Secret formats, marshals and logs as "<secret>".
//
// A config field of type Secret has a sibling `*_file` field naming a file that holds the value;
// Resolver.Resolve picks whichever is set. There is no process-wide Resolver: the program makes
// one (with its logger) and passes it to the config, the connectors and the SCIM client's token
// source. The value may also be a reference to where the secret lives
// (aws-secretsmanager://NAME#json-key, aws-ssm:///path, file:///path, env://VAR), fetched when
// it is resolved: at start and on each use, so a rotated secret is picked up without a restart.
// A value that looks like a reference but is not a valid one (file:/run/x with one slash,
// aws-secretmanager://NAME, vault://...) is an error, never used as the secret itself (see
// CheckValue); a literal secret that must start that way goes in the `*_file` sibling.
package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what a Secret prints as.
const Redacted = "<secret>"

// Secret is a configuration value that must never appear in logs, errors, plans or pages.
type Secret string

// String returns Redacted, so that fmt and string concatenation of %v/%s never leak the value.
func (s Secret) String() string { return Redacted }

// GoString returns Redacted for %#v.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb, %q and %x included, prints Redacted.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalYAML renders Redacted (for a config shown back to a person).
func (s Secret) MarshalYAML() (any, error) { return Redacted, nil }

// MarshalJSON renders Redacted.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// Reveal returns the secret's value, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether a value was given.
func (s Secret) IsSet() bool { return s != "" }
