// Package config loads scimbridge's configuration file: YAML decoded strictly (an unknown key is
// an error), `${ENV}` expanded in values, SCIMBRIDGE_* variables applied over the file, the
// defaults filled in by one function (defaults.go; deploy/CONFIG.md lists them), every relative
// file path resolved once against the config file's folder (paths.go; data_dir is the one
// exception), then every problem reported at once by Validate, which changes nothing. Secrets
// never print: the rendered config and every message show <secret>; their references resolve
// through the secret.Resolver the program passes in.
//
//	source:
//	  type: file                     # file | ldap | google
//	  file: {path: directory.yaml}
//	mapping: {}                      # see package connectors
//	scope: {}
//	target:                          # empty: the embedded Identity Center under data_dir
//	  scim_url: https://scim.us-east-1.amazonaws.com/TENANT/scim/v2
//	  token_file: /run/secrets/scim-token
//	sync:
//	  policy: sync                   # sync | upsert-only | create-only
//	  deprovision: delete            # delete | disable
//	  guards: {max_deletes: 100, max_delete_percent: 20, max_clear_percent: 10}
package config

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/secret"
	"github.com/scimbridge/scimbridge/scim/plan"
)

// Config is the whole configuration.
type Config struct {
	Source  Source                   `yaml:"source"`
	Mapping connectors.MappingConfig `yaml:"mapping,omitempty"`
	Scope   connectors.ScopeConfig   `yaml:"scope,omitempty"`
	Target  Target                   `yaml:"target,omitempty"`
	Sync    Sync                     `yaml:"sync,omitempty"`
	State   State                    `yaml:"state,omitempty"`
	Log     Log                      `yaml:"log,omitempty"`
	Service Service                  `yaml:"service,omitempty"`
	// DataDir holds the state file and the embedded Identity Center's data when their paths are
	// not given. Relative to the working directory, unlike every other path (see paths.go);
	// default "data".
	DataDir string `yaml:"data_dir,omitempty"`
}

// Target is where users and groups are written.
type Target struct {
	// SCIMURL is the SCIM endpoint, ending in /scim/v2. Empty: the embedded Identity Center.
	SCIMURL   string        `yaml:"scim_url,omitempty"`
	Token     secret.Secret `yaml:"token,omitempty"`
	TokenFile string        `yaml:"token_file,omitempty"`
	// Profile is identity_center (default) or generic (a plain SCIM 2.0 server, whose
	// /ServiceProviderConfig is read for the defaults of the settings below).
	Profile Profile `yaml:"profile,omitempty"`
	// PageSize is the count asked for per page of a listing. Default: 100 for identity_center
	// (its most); for generic, the target's filter.maxResults, else 100.
	PageSize int `yaml:"page_size,omitempty"`
	// MembersPerRequest caps the members a group create carries and the membership changes of
	// one PATCH. Default: 100 for identity_center (its most), 1000 for generic.
	MembersPerRequest int `yaml:"members_per_request,omitempty"`
	// GroupMembers is how group members are read: auto (default; generic: from the group
	// listing when it shows any, else per user with a filter when the target filters, else per
	// group with a GET), listings, filter (per user: members.value eq "<id>") or get (per group).
	// identity_center returns groups without members: only filter works there.
	GroupMembers GroupMembers `yaml:"group_members,omitempty"`
	// IdentityStoreID enables bulk reads through the identitystore API with the AWS configuration
	// of the environment, loaded as the AWS CLI does (AWS_PROFILE, shared config and credentials
	// files, AWS_REGION, AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_IDENTITYSTORE, roles). Region and
	// IdentityStoreEndpoint, when set, override the region and endpoint found there.
	IdentityStoreID       string `yaml:"identity_store_id,omitempty"`
	Region                string `yaml:"region,omitempty"`
	IdentityStoreEndpoint string `yaml:"identitystore_endpoint,omitempty"`
	// Timeout bounds each HTTP request; default 30s.
	Timeout Duration `yaml:"timeout,omitempty"`
	// Concurrency is how many writes may be in flight; default 16.
	Concurrency int `yaml:"concurrency,omitempty"`
	// Rate sets the adaptive limiter's starting, lowest and highest request rate per second.
	Rate Rate `yaml:"rate,omitempty"`
	// CAFile adds a CA bundle for a target with a private CA; TLS is always verified.
	CAFile string `yaml:"ca_file,omitempty"`
	// Embedded configures the embedded Identity Center used when SCIMURL is empty.
	Embedded Embedded `yaml:"embedded,omitempty"`
}

// Profile names the SCIM dialect of a target. The wiring turns it (with page_size,
// members_per_request and group_members) into the client's profile; this package does not import
// the client.
type Profile string

// The target profiles.
const (
	// ProfileIdentityCenter is AWS IAM Identity Center: 100 per page and per membership request,
	// groups listed without members.
	ProfileIdentityCenter Profile = "identity_center"
	// ProfileGeneric is a plain SCIM 2.0 server, described by its /ServiceProviderConfig.
	ProfileGeneric Profile = "generic"
)

// GroupMembers is how a target's group members are read.
type GroupMembers string

// The ways of reading group members.
const (
	// GroupMembersAuto picks for the target: filter on identity_center; on generic, listings when
	// the group listing shows members, else filter when the target filters, else get.
	GroupMembersAuto     GroupMembers = "auto"
	GroupMembersListings GroupMembers = "listings" // from the group listing
	GroupMembersFilter   GroupMembers = "filter"   // per user: members.value eq "<id>"
	GroupMembersGet      GroupMembers = "get"      // per group, with a GET
)

// Rate configures the adaptive limiter.
type Rate struct {
	// Initial is the starting rate; default 10, or 500 for the embedded target.
	Initial float64 `yaml:"initial,omitempty"`
	// Min is the lowest rate the limiter backs off to; default 0.5.
	Min float64 `yaml:"min,omitempty"`
	// Max is the highest rate the limiter grows to; default 1000 (raised to min when min is higher).
	Max float64 `yaml:"max,omitempty"`
}

// Embedded configures the embedded Identity Center.
type Embedded struct {
	// DataFile is its SQLite file; default <data_dir>/identity-center.db.
	DataFile string `yaml:"data_file,omitempty"`
}

// Sync steers planning.
type Sync struct {
	Policy      plan.Policy      `yaml:"policy,omitempty"`
	Deprovision plan.Deprovision `yaml:"deprovision,omitempty"`
	Adopt       plan.Adopt       `yaml:"adopt,omitempty"`
	// AdoptUnmatched (with adopt external_id or name, and policy sync) also takes over the unowned
	// users and groups whose externalId matches no source record, left by the tool before
	// scimbridge, to deprovision them under the guards. See plan.Options.AdoptUnmatched.
	AdoptUnmatched bool `yaml:"adopt_unmatched,omitempty"`
	// FullReconcileInterval is how often a run reads the whole target to repair drift; between
	// full reads the state store is trusted and a no-change run makes no request. 0: every run
	// reads the target. Default 24h.
	FullReconcileInterval *Duration `yaml:"full_reconcile_interval,omitempty"`
	Guards                Guards    `yaml:"guards,omitempty"`
}

// Guards are the safety limits; see plan.Guards. The allow_* keys are a person's consent for
// serve, the counterpart of sync's --allow-* flags: set them for the run that needs them, then
// take them out again.
type Guards struct {
	MaxDeletes       *int     `yaml:"max_deletes,omitempty"`
	MaxDeletePercent *float64 `yaml:"max_delete_percent,omitempty"`
	AllowDeletes     int      `yaml:"allow_deletes,omitempty"`
	// MaxClearPercent blocks a run whose updates would clear one attribute on more than this
	// share of the owned users (and on at least plan.MinClears). Default 10; negative: off.
	MaxClearPercent *float64 `yaml:"max_clear_percent,omitempty"`
	// AllowClears names attributes whose clears are let through (emails, title, ...).
	AllowClears []string `yaml:"allow_clears,omitempty"`
	// AllowEmptySource lets an empty or near-empty source deprovision.
	AllowEmptySource bool `yaml:"allow_empty_source,omitempty"`
}

// State configures the state store: an SQLite file (Path, the default), or a PostgreSQL database
// shared by several replicas (URL).
type State struct {
	// Path is the SQLite file; default <data_dir>/state.db. Not used with URL.
	Path string `yaml:"path,omitempty"`
	// URL selects a PostgreSQL state store: postgres://user:password@host:5432/db?sslmode=verify-full
	// (sslmode and the other libpq parameters come from the URL; use verify-full across a
	// network), or a secret reference to it. It never prints: errors, logs and the status page
	// name the database without its password.
	URL     secret.Secret `yaml:"url,omitempty"`
	URLFile string        `yaml:"url_file,omitempty"`
	// LockTimeout is how long a run that writes waits for another writer's lock on the state
	// store before it gives up (exit code 4); default 0, give up at once.
	LockTimeout Duration `yaml:"lock_timeout,omitempty"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level,omitempty"`  // debug | info | warn | error
	Format string `yaml:"format,omitempty"` // text | json
}

// Duration is a time.Duration written as "30s", "24h".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (such as 30s or 24h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML renders the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Load reads, expands, decodes and validates a config file. All problems come back at once.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := decode(raw, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	envErr := c.applyEnv(os.Environ()) // SCIMBRIDGE_* variables win over the file (env.go)
	c.setDefaults()                    // after the environment: some defaults depend on other keys
	c.resolvePaths(filepath.Dir(abs))  // once, for every key that names a file (paths.go)
	if err := errors.Join(envErr, c.Validate()); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a config from YAML, expanding ${VAR} in every value through lookup, and fills in
// the defaults. It checks the shape (unknown keys, wrong types) but not the meaning: call
// Validate for that.
func Parse(raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	c, err := decode(raw, lookup)
	if err != nil {
		return nil, err
	}
	c.setDefaults()
	return c, nil
}

// decode is Parse without the defaults.
func decode(raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, err
	}
	var errs []error
	expanded := expandText(raw, &root, lookup, &errs)
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				errs = append(errs, errors.New(e))
			}
		} else {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &c, nil
}

// expandText replaces ${VAR} (and ${VAR:-default}) in every scalar value of the parsed document;
// $$ stands for $. Each expanded value is written back over its own token in the source text, on
// the same line, as a plain scalar when it is a simple word (so ${PORT} can fill an integer) and
// double-quoted otherwise: a value can never change the document's structure, and every line
// number in later error messages stays the one the person wrote.
func expandText(raw []byte, root *yaml.Node, lookup func(string) (string, bool), errs *[]error) []byte {
	lines := strings.SplitAfter(string(raw), "\n")
	type edit struct {
		line, start, end int // byte offsets within the line
		text             string
	}
	var edits []edit
	var walk func(n *yaml.Node, flow bool)
	walk = func(n *yaml.Node, flow bool) {
		for _, c := range n.Content {
			walk(c, flow || n.Style&yaml.FlowStyle != 0)
		}
		if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "$") || n.Line < 1 || n.Line > len(lines) {
			return
		}
		line := lines[n.Line-1]
		start := runeOffset(line, n.Column-1)
		end := tokenEnd(line, start, n.Style, flow)
		if end < 0 {
			*errs = append(*errs, fmt.Errorf("line %d: ${...} is only expanded in single-line values", n.Line))
			return
		}
		v := expand(n.Value, n.Line, lookup, errs)
		text := strconv.Quote(v)
		if n.Style == 0 && plainSafe(v) {
			text = v
		}
		edits = append(edits, edit{n.Line - 1, start, end, text})
	}
	walk(root, false)
	// Apply the edits of a line from its end, so earlier offsets stay valid.
	slices.SortFunc(edits, func(a, b edit) int { return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(b.start, a.start)) })
	for _, e := range edits {
		l := lines[e.line]
		lines[e.line] = l[:e.start] + e.text + l[e.end:]
	}
	return []byte(strings.Join(lines, ""))
}

// plainWord matches values that may stay one scalar, of the type they look like, when written
// plain; plainSafe makes sure.
var plainWord = regexp.MustCompile(`^[A-Za-z0-9_./@+-][A-Za-z0-9_./@+:-]*$`)

// plainSafe reports whether v, written plain as a value in block and in flow style, reads back
// as one non-null scalar with exactly the text v. "a:", "-", "@x" and "null" are not: written
// plain they would break the document or lose the value.
func plainSafe(v string) bool {
	if !plainWord.MatchString(v) {
		return false
	}
	for _, doc := range []string{"k: " + v + "\n", "{k: " + v + "}\n"} {
		var n yaml.Node
		if yaml.Unmarshal([]byte(doc), &n) != nil || len(n.Content) != 1 || len(n.Content[0].Content) != 2 {
			return false
		}
		if val := n.Content[0].Content[1]; val.Kind != yaml.ScalarNode || val.Value != v || val.ShortTag() == "!!null" {
			return false
		}
	}
	return true
}

// runeOffset converts a 0-based column in runes to a byte offset in line.
func runeOffset(line string, col int) int {
	for i := range line {
		if col == 0 {
			return i
		}
		col--
	}
	return len(line)
}

// tokenEnd returns the byte offset just past the scalar token starting at start, or -1 when the
// token does not end on this line.
func tokenEnd(line string, start int, style yaml.Style, flow bool) int {
	body := strings.TrimRight(line, "\r\n")
	switch style {
	case yaml.DoubleQuotedStyle:
		for i := start + 1; i < len(body); i++ {
			switch body[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return -1
	case yaml.SingleQuotedStyle:
		for i := start + 1; i < len(body); i++ {
			if body[i] == '\'' {
				if i+1 < len(body) && body[i+1] == '\'' {
					i++
					continue
				}
				return i + 1
			}
		}
		return -1
	case 0:
		// A plain scalar ends at " #", at ",", "]" or "}" in a flow (outside ${...}), or at the
		// end of the line.
		end := len(body)
	scan:
		for i := start; i < len(body); i++ {
			switch {
			case body[i] == '#' && i > start && body[i-1] == ' ':
				end = i
				break scan
			case body[i] == '$' && i+1 < len(body) && body[i+1] == '{':
				if j := strings.IndexByte(body[i:], '}'); j > 0 {
					i += j
				}
			case flow && (body[i] == ',' || body[i] == ']' || body[i] == '}'):
				end = i
				break scan
			}
		}
		return start + len(strings.TrimRight(body[start:end], " \t"))
	}
	return -1
}

func expand(s string, line int, lookup func(string) (string, bool), errs *[]error) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '$':
			b.WriteByte('$')
			i++
		case i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				*errs = append(*errs, fmt.Errorf("line %d: unclosed ${ in value", line))
				return s
			}
			name, def, hasDef := strings.Cut(s[i+2:i+end], ":-")
			v, ok := lookup(name)
			switch {
			case name == "":
				*errs = append(*errs, fmt.Errorf("line %d: ${} names no environment variable", line))
			case ok && !utf8.ValidString(v):
				// Written into the YAML text it would come back as other characters (a token
				// silently changed); the value itself is never quoted in the message.
				*errs = append(*errs, fmt.Errorf("line %d: environment variable %s is not valid UTF-8", line, name))
			case ok && (v != "" || !hasDef):
				b.WriteString(v)
			case hasDef:
				b.WriteString(def)
			default:
				*errs = append(*errs, fmt.Errorf("line %d: environment variable %s is not set", line, name))
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// Validate checks the config's meaning (its defaults already filled in by Parse or Load),
// compiles the mapping and reports every problem at once. It changes nothing.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := c.Source.validate(); err != nil {
		errs = append(errs, err)
	}
	t := &c.Target
	if t.SCIMURL != "" {
		u, err := url.Parse(t.SCIMURL)
		switch {
		case err != nil || u.Host == "":
			add("target.scim_url: %q is not a URL", t.SCIMURL)
		case u.Scheme != "https" && !isLoopback(u.Hostname()):
			add("target.scim_url: use https (plain http is only allowed to a loopback address)")
		}
		if !t.Token.IsSet() && t.TokenFile == "" {
			add("target: token or token_file is required with scim_url")
		}
	} else if t.Token.IsSet() || t.TokenFile != "" || t.IdentityStoreID != "" {
		add("target: token, token_file and identity_store_id need scim_url (without it the embedded Identity Center is used)")
	}
	if t.Token.IsSet() && t.TokenFile != "" {
		add("target: token and token_file are both set; use one")
	}
	switch t.Profile {
	case ProfileIdentityCenter, ProfileGeneric:
	default:
		add("target.profile: %q is not identity_center or generic", t.Profile)
	}
	maxPage, maxMembers := 1000, 10000
	if t.Profile == ProfileIdentityCenter {
		maxPage, maxMembers = 100, 100
	}
	if t.PageSize < 0 || t.PageSize > maxPage {
		add("target.page_size: %d is outside 1..%d for the %s profile", t.PageSize, maxPage, t.Profile)
	}
	if t.MembersPerRequest < 0 || t.MembersPerRequest > maxMembers {
		add("target.members_per_request: %d is outside 1..%d for the %s profile", t.MembersPerRequest, maxMembers, t.Profile)
	}
	switch t.GroupMembers {
	case GroupMembersAuto, GroupMembersFilter:
	case GroupMembersListings, GroupMembersGet:
		if t.Profile == ProfileIdentityCenter {
			add("target.group_members: %q does not work with the identity_center profile, which returns groups without members; use filter (or leave it unset)", t.GroupMembers)
		}
	default:
		add("target.group_members: %q is not auto, listings, filter or get", t.GroupMembers)
	}
	if t.Concurrency < 0 || t.Concurrency > 256 {
		add("target.concurrency: %d is outside 1..256", t.Concurrency)
	}
	if t.Rate.Min < 0 || t.Rate.Max < 0 || t.Rate.Initial < 0 || (t.Rate.Max > 0 && t.Rate.Min > t.Rate.Max) {
		add("target.rate: need 0 <= min <= initial <= max")
	}

	s := &c.Sync
	switch s.Policy {
	case plan.PolicySync, plan.PolicyUpsertOnly, plan.PolicyCreateOnly:
	default:
		add("sync.policy: %q is not sync, upsert-only or create-only", s.Policy)
	}
	switch s.Deprovision {
	case plan.DeprovisionDelete, plan.DeprovisionDisable:
	default:
		add("sync.deprovision: %q is not delete or disable", s.Deprovision)
	}
	switch s.Adopt {
	case plan.AdoptNone, plan.AdoptExternalID, plan.AdoptName:
	default:
		add("sync.adopt: %q is not none, external_id or name", s.Adopt)
	}
	if s.AdoptUnmatched && s.Adopt == plan.AdoptNone {
		add("sync.adopt_unmatched: needs sync.adopt external_id or name (it takes over objects, which adopt none never does)")
	}
	if s.AdoptUnmatched && s.Policy != plan.PolicySync {
		add("sync.adopt_unmatched: needs sync.policy sync (it deprovisions what it takes over; %s never does)", s.Policy)
	}
	if s.FullReconcileInterval != nil && *s.FullReconcileInterval < 0 {
		add("sync.full_reconcile_interval: must not be negative")
	}
	if c.State.LockTimeout < 0 {
		add("state.lock_timeout: must not be negative")
	}
	errs = append(errs, c.State.validate()...)
	if g := s.Guards; g.MaxDeletePercent != nil && *g.MaxDeletePercent > 100 {
		add("sync.guards.max_delete_percent: %g is over 100", *g.MaxDeletePercent)
	}
	if s.Guards.AllowDeletes < 0 {
		add("sync.guards.allow_deletes: must not be negative")
	}
	if g := s.Guards; g.MaxClearPercent != nil && *g.MaxClearPercent > 100 {
		add("sync.guards.max_clear_percent: %g is over 100", *g.MaxClearPercent)
	}
	for _, a := range s.Guards.AllowClears {
		if _, ok := plan.ClearAttribute(a); !ok {
			add("sync.guards.allow_clears: %q is not a user attribute (use the names the plan shows, such as emails or title)", a)
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		add("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		add("log.format: %q is not text or json", c.Log.Format)
	}
	errs = append(errs, c.Service.validate()...)
	errs = append(errs, c.validateSecrets()...)
	if c.Source.Type != "" && c.Source.config() != nil {
		if _, err := c.CompileMapping(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Guards returns the plan guards the config asks for (setDefaults filled in plan.DefaultGuards'
// limits where the config gives none).
func (c *Config) Guards() plan.Guards {
	g := plan.DefaultGuards
	if c.Sync.Guards.MaxDeletes != nil {
		g.MaxDeletes = *c.Sync.Guards.MaxDeletes
	}
	if c.Sync.Guards.MaxDeletePercent != nil {
		g.MaxDeletePercent = *c.Sync.Guards.MaxDeletePercent
	}
	if c.Sync.Guards.MaxClearPercent != nil {
		g.MaxClearPercent = *c.Sync.Guards.MaxClearPercent
	}
	g.AllowDeletes = c.Sync.Guards.AllowDeletes
	g.AllowClears = c.Sync.Guards.AllowClears
	g.AllowEmptySource = c.Sync.Guards.AllowEmptySource
	return g
}

// PlanOptions returns the plan options the config asks for.
func (c *Config) PlanOptions() plan.Options {
	return plan.Options{Policy: c.Sync.Policy, Deprovision: c.Sync.Deprovision, Adopt: c.Sync.Adopt, AdoptUnmatched: c.Sync.AdoptUnmatched}
}

// CompileMapping compiles the mapping and scope on top of the source flavour's defaults.
func (c *Config) CompileMapping() (*connectors.Mapping, error) {
	return connectors.Compile(c.Source.config().Flavour(), c.Mapping, c.Scope)
}

// StatePath is the SQLite state store's file (see StateLocation for a PostgreSQL store).
func (c *Config) StatePath() string {
	if c.State.Path != "" {
		return c.State.Path
	}
	return filepath.Join(c.DataDir, "state.db")
}

// EmbeddedDataFile is the embedded Identity Center's SQLite file.
func (c *Config) EmbeddedDataFile() string {
	if c.Target.Embedded.DataFile != "" {
		return c.Target.Embedded.DataFile
	}
	return filepath.Join(c.DataDir, "identity-center.db")
}

// SCIMToken resolves the SCIM token from token or token_file, fetching a reference through
// secrets (nil: a Resolver with the default options).
func (c *Config) SCIMToken(ctx context.Context, secrets *secret.Resolver) (secret.Secret, error) {
	return secrets.Resolve(ctx, "target.token", c.Target.Token, c.Target.TokenFile)
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}
