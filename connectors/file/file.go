// Package file is the YAML file connector: a directory of users and groups kept in one file, for
// small teams that keep their directory in git, for demos and for tests.
//
// The source configuration:
//
//	source:
//	  file:
//	    path: ./directory.yaml
//
// The directory file:
//
//	users:
//	  - id: u-ada                 # stable: becomes the externalId; never reuse or change it
//	    userName: ada@example.com
//	    givenName: Ada
//	    familyName: Lovelace
//	    email: ada@example.com
//	    title: Engineer
//	    department: Engineering
//	    manager: u-grace            # an id (or userName or email) of another user
//	    suspended: false            # or active: true
//	    attributes:                 # free-form, for custom mappings: a value or a list
//	      badge: "1234"
//	groups:
//	  - id: g-eng
//	    name: Engineering
//	    members: [u-ada, g-platform] # ids of users or groups; nested groups are flattened
//
// The file is decoded strictly: an unknown key, a value of the wrong type, a missing id and a
// duplicate id, userName, email or group name are errors naming the record and the line, all
// reported at once; a file with any error yields no Directory.
//
// The source has a change feed (Feed, for `scimbridge serve`): it watches the file's folder, so
// that an editor's or git's rename into place and a Kubernetes ConfigMap's symlink swap are seen,
// and stats the file every PollInterval as well. Each change of the content yields the ids of the
// records that changed, appeared or went, computed against the content read before; the cursor
// is the content's SHA-256, so a restart with the file unchanged resumes silently, and one after
// an edit made while nobody watched asks for a full read. ReadEntries (targeted reads) reads the
// file once and returns the records asked for.
//
// Every read reads the file and hashes it, but a source parses a content once: the feed's read
// of an edit and the run's read after it share one parse. A new content decodes only the records
// whose text changed (records that moved keep what they decoded to, with their new lines); the
// source keeps the last content's records and nothing older.
package file

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim"
)

// Config configures the file connector.
type Config struct {
	// Path is the directory file, relative to the working directory.
	Path string `yaml:"path" json:"path"`
}

// Validate reports a configuration problem without touching the file.
func (c Config) Validate() error {
	if c.Path == "" {
		return errors.New("file: path is required")
	}
	return nil
}

// Open returns a Source reading the file. It checks that the file exists; the content is read
// (and checked) on each Read, so edits are picked up without a restart.
func (c Config) Open(logger *slog.Logger) (connectors.Source, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(c.Path)
	if err != nil {
		return nil, fmt.Errorf("file: resolve %q: %w", c.Path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("file: open directory file: %w", err)
	}
	return &source{path: abs, logger: logger.With("connector", "file")}, nil
}

// Flavour returns the default mapping for the file format: every field maps to the user target of
// the same name (the keys of the attribute table; the address's under address.); displayName
// defaults to "givenName familyName", and the types of an email, phone number and address to
// "work" when the value is set and its type is not.
func (Config) Flavour() connectors.Flavour { return Flavour() }

// Flavour returns the default mapping for the file format (the same as Config.Flavour).
func Flavour() connectors.Flavour {
	u := map[string]string{}
	for _, a := range scim.UserAttributes() {
		if a.Key != "" && !a.Bool {
			u[a.Key] = fmt.Sprintf("attr(%q)", a.Key)
		}
	}
	u["displayName"] = `default(attr("displayName"), trim(attr("givenName") + " " + attr("familyName")))`
	u["emailType"] = `default(attr("emailType"), attr("email") == "" ? "" : "work")`
	u["phoneType"] = `default(attr("phoneType"), attr("phoneNumber") == "" ? "" : "work")`
	u["address.type"] = `default(attr("address.type"), attr("address.formatted") + attr("address.streetAddress") + attr("address.locality") + attr("address.postalCode") + attr("address.country") == "" ? "" : "work")`
	u["active"] = `attr("active") != "false"`
	return connectors.Flavour{
		Name:  "file",
		User:  u,
		Group: map[string]string{"displayName": `default(attr("name"), id)`},
	}
}

// source reads the directory file.
type source struct {
	path   string
	logger *slog.Logger
	cache  parseCache
}

var (
	_ connectors.Source  = (*source)(nil)
	_ connectors.Checker = (*source)(nil)
)

// Read reads and checks the whole file. The file is read on every call; content identical to the
// last one read (by the feed or by Read) is not parsed again, and a changed one decodes only the
// records whose text changed. The Directory's lists are the caller's own; the entries in them are
// shared with the cache and must not be modified.
func (s *source) Read(ctx context.Context) (*connectors.Directory, error) {
	d, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	return clone(d), nil
}

// read is Read returning the cached Directory itself, for callers that only look at it.
func (s *source) read(ctx context.Context) (*connectors.Directory, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file: read %s: %w", s.path, err)
	}
	start := time.Now()
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("file: read directory file: %w", err)
	}
	_, d, warnings, err := s.cache.parse(data)
	if err != nil {
		return nil, fmt.Errorf("file: %s: %w", s.path, err)
	}
	for _, w := range warnings {
		s.logger.Warn("directory file: "+w, "path", s.path)
	}
	s.logger.Debug("read directory file", "path", s.path, "users", len(d.Users), "groups", len(d.Groups), "duration", time.Since(start))
	return d, nil
}

// Close does nothing: the file is not held open.
func (s *source) Close() error { return nil }

// Check reads the file and reports what it holds.
func (s *source) Check(ctx context.Context) (connectors.CheckReport, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return connectors.CheckReport{}, fmt.Errorf("file: check: %w", err)
	}
	sum, d, _, err := s.cache.parse(data)
	if err != nil {
		return connectors.CheckReport{}, fmt.Errorf("file: check %s: %w", s.path, err)
	}
	return connectors.CheckReport{
		Identity: "file " + s.path,
		Details: map[string]string{
			"users":  strconv.Itoa(len(d.Users)),
			"groups": strconv.Itoa(len(d.Groups)),
			"sha256": hex.EncodeToString(sum[:]),
		},
	}, nil
}
