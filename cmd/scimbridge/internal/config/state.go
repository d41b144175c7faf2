package config

import (
	"context"
	"fmt"
	"strings"

	"github.com/scimbridge/scimbridge/connectors/secret"
	"github.com/scimbridge/scimbridge/scim/state"
)

// UsesPostgres reports whether the state store is a PostgreSQL database (state.url or
// state.url_file is set) rather than the SQLite file.
func (c *Config) UsesPostgres() bool {
	return c.State.URL.IsSet() || c.State.URLFile != ""
}

// StateLocation is where the state store lives: the PostgreSQL URL (state.url or its _file,
// a reference fetched through secrets), or else the SQLite file (StatePath). The URL holds the
// database password: pass it only to package state, which never prints it; name the store in
// messages with StateDescription.
func (c *Config) StateLocation(ctx context.Context, secrets *secret.Resolver) (string, error) {
	if !c.UsesPostgres() {
		return c.StatePath(), nil
	}
	if v := c.State.URL.Reveal(); state.IsPostgresURL(v) && c.State.URLFile == "" {
		return v, nil // a literal URL: Resolve would take it for a reference of an unknown scheme
	}
	u, err := secrets.Resolve(ctx, "state.url", c.State.URL, c.State.URLFile)
	if err != nil {
		return "", err
	}
	u = secret.Secret(strings.TrimSpace(u.Reveal()))
	if !state.IsPostgresURL(u.Reveal()) {
		return "", fmt.Errorf("state.url: the value is not a postgres:// or postgresql:// URL (the value is not shown)")
	}
	return u.Reveal(), nil
}

// StateDescription names the state store for messages: the SQLite file, or the PostgreSQL URL
// without its password (or the reference it is fetched from).
func (c *Config) StateDescription() string {
	switch {
	case c.State.URLFile != "":
		return "the PostgreSQL database named in " + c.State.URLFile
	case c.State.URL.IsSet() && secret.IsRef(c.State.URL.Reveal()):
		return "the PostgreSQL database named by " + c.State.URL.Reveal()
	case c.State.URL.IsSet():
		return state.RedactURL(c.State.URL.Reveal())
	}
	return c.StatePath()
}

// validate checks the state keys: one store, and an inline URL that is a PostgreSQL one.
func (s State) validate() []error {
	var errs []error
	if s.URL.IsSet() && s.URLFile != "" {
		errs = append(errs, fmt.Errorf("state.url and state.url_file are both set; use one"))
	}
	if (s.URL.IsSet() || s.URLFile != "") && s.Path != "" {
		errs = append(errs, fmt.Errorf("state.path and state.url are both set: state.path is the SQLite file, state.url a PostgreSQL database; use one"))
	}
	if v := s.URL.Reveal(); v != "" && !secret.IsRef(v) && secret.CheckValue(v) == nil && !state.IsPostgresURL(v) {
		errs = append(errs, fmt.Errorf("state.url: not a postgres:// or postgresql:// URL, nor a secret reference (the value is not shown)"))
	}
	return errs
}
