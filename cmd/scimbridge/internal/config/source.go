package config

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/file"
	"github.com/scimbridge/scimbridge/connectors/google"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/secret"
)

// Source selects and configures the directory connector.
type Source struct {
	// Type is the connector: one of SourceTypes.
	Type   string         `yaml:"type"`
	File   *file.Config   `yaml:"file,omitempty"`
	Google *google.Config `yaml:"google,omitempty"`
	LDAP   *ldap.Config   `yaml:"ldap,omitempty"`
}

// sourceConfig is what every connector's Config provides.
type sourceConfig interface {
	Validate() error
	Open(logger *slog.Logger) (connectors.Source, error)
	Flavour() connectors.Flavour
}

// sources lists the connectors by type: an explicit table, no init-time registration.
var sources = map[string]func(s *Source) (sourceConfig, bool){
	"file":   func(s *Source) (sourceConfig, bool) { return s.File, s.File != nil },
	"google": func(s *Source) (sourceConfig, bool) { return s.Google, s.Google != nil },
	"ldap":   func(s *Source) (sourceConfig, bool) { return s.LDAP, s.LDAP != nil },
}

// SourceTypes lists the connector types, sorted.
func SourceTypes() []string {
	var t []string
	for k := range sources {
		t = append(t, k)
	}
	slices.Sort(t)
	return t
}

// config returns the selected connector's config, or nil.
func (s *Source) config() sourceConfig {
	get, ok := sources[s.Type]
	if !ok {
		return nil
	}
	c, ok := get(s)
	if !ok {
		return nil
	}
	return c
}

func (s *Source) validate() error {
	if s.Type == "" {
		return fmt.Errorf("source.type is required (one of %s)", strings.Join(SourceTypes(), ", "))
	}
	get, ok := sources[s.Type]
	if !ok {
		return fmt.Errorf("source.type: %q is not one of %s", s.Type, strings.Join(SourceTypes(), ", "))
	}
	var errs []error
	for t, g := range sources {
		if _, set := g(s); set && t != s.Type {
			errs = append(errs, fmt.Errorf("source.%s is set but source.type is %s", t, s.Type))
		}
	}
	c, set := get(s)
	if !set {
		errs = append(errs, fmt.Errorf("source.%s is required when source.type is %s", s.Type, s.Type))
	} else if err := c.Validate(); err != nil {
		errs = append(errs, prefix("source."+s.Type, err))
	}
	return errors.Join(errs...)
}

// OpenSource opens the configured connector, which resolves its secret references through
// secrets. A connector that can leave out work for groups out of scope (connectors.GroupScoped)
// is given the compiled scope.
func (c *Config) OpenSource(logger *slog.Logger, secrets *secret.Resolver) (connectors.Source, error) {
	sc := c.Source.config()
	if sc == nil {
		return nil, fmt.Errorf("config: source %q is not configured", c.Source.Type)
	}
	switch f := sc.(type) {
	case *ldap.Config:
		withSecrets := *f
		withSecrets.Secrets = secrets
		sc = &withSecrets
	case *google.Config:
		withSecrets := *f
		withSecrets.Secrets = secrets
		sc = &withSecrets
	}
	src, err := sc.Open(logger)
	if err != nil {
		return nil, err
	}
	if gs, ok := src.(connectors.GroupScoped); ok {
		m, err := c.CompileMapping()
		if err != nil {
			_ = src.Close()
			return nil, err
		}
		gs.SetGroupScope(m.GroupMayBeInScope)
	}
	return src, nil
}

// prefix puts a key path before each of err's joined errors.
func prefix(key string, err error) error {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, prefix(key, e))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s: %w", key, err)
}
