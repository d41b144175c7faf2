package ldap

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

// Flavour names accepted in Config.FlavourName.
const (
	FlavourActiveDirectory = "active_directory"
	FlavourOpenLDAP        = "openldap"
	FlavourGeneric         = "generic"
)

// Nesting modes accepted in GroupsConfig.Nested.
const (
	// NestedClient returns a group's direct members (users and groups); the shared mapping
	// flattens them, tolerating cycles.
	NestedClient = "client"
	// NestedServer asks Active Directory for each group's transitive users with the in-chain
	// matching rule (1.2.840.113556.1.4.1941).
	NestedServer = "server"
)

// MaxPageSize is the largest page the connector requests (Windows' MaxPageSize).
const MaxPageSize = 1000

// Defaults for the timeouts.
const (
	DefaultDialTimeout    = 10 * time.Second
	DefaultRequestTimeout = 2 * time.Minute
)

// Config configures an LDAP, Active Directory or LDIF source. Empty fields take the flavour's
// defaults (see Flavour and the flavour tables in flavour.go).
type Config struct {
	// FlavourName is active_directory, openldap or generic (yaml: flavour).
	FlavourName string `yaml:"flavour"`
	// URL is ldap://host[:port] or ldaps://host[:port]. Exactly one of URL and LDIFFile is set.
	URL string `yaml:"url"`
	// StartTLS upgrades an ldap:// connection with StartTLS before binding.
	StartTLS bool `yaml:"start_tls"`
	// TLS configures certificate checks for ldaps:// and StartTLS.
	TLS TLSConfig `yaml:"tls"`
	// DialTimeout bounds connecting (default 10s).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// RequestTimeout bounds each request, one page of a search included (default 2m).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// BindDN is the DN (or, on AD, the user principal name) for a simple bind; empty with no
	// Kerberos block means an anonymous bind.
	BindDN string `yaml:"bind_dn"`
	// BindPassword is the simple bind password; BindPasswordFile names a file holding it.
	BindPassword     secret.Secret `yaml:"bind_password"`
	BindPasswordFile string        `yaml:"bind_password_file"`
	// Secrets resolves BindPassword when it is a reference (aws-secretsmanager://, env://, ...);
	// set by the program, not the config file. Nil: one with the default options, which
	// reads file:// and env:// but no AWS reference.
	Secrets *secret.Resolver `yaml:"-"`
	// Kerberos, when set, binds with SASL GSSAPI using a keytab instead of a simple bind.
	Kerberos *KerberosConfig `yaml:"kerberos"`
	// LDIFFile reads an LDIF export (ldifde, ldapsearch) instead of a server.
	LDIFFile string `yaml:"ldif_file"`
	// IDAttribute is the attribute holding the stable id (default objectGUID on AD, entryUUID
	// elsewhere). objectGUID is rendered in canonical UUID form.
	IDAttribute string `yaml:"id_attribute"`
	// PageSize is the search page size, at most 1000 (the default).
	PageSize int `yaml:"page_size"`
	// Users says where and which users to read.
	Users UsersConfig `yaml:"users"`
	// Groups says where and which groups to read, and how membership is expressed.
	Groups GroupsConfig `yaml:"groups"`
	// Feed configures the change feed (serve's freshness between full reads).
	Feed FeedConfig `yaml:"feed"`
}

// TLSConfig configures TLS for ldaps:// and StartTLS. Verification is on unless
// InsecureSkipVerify is set, which logs a warning on every connection.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs to trust instead of the system pool.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name checked in the server certificate (default: the URL host).
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile are a client certificate and its key, for servers that ask for one.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify turns certificate verification off. Never in production.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// KerberosConfig configures a SASL GSSAPI bind with a keytab.
type KerberosConfig struct {
	// Username is the principal's name without the realm, e.g. scimbridge.
	Username string `yaml:"username"`
	// Realm is the Kerberos realm, e.g. EXAMPLE.COM (empty: krb5.conf's default_realm).
	Realm string `yaml:"realm"`
	// Keytab is the path of the keytab holding the principal's keys.
	Keytab string `yaml:"keytab"`
	// Krb5Conf is the path of krb5.conf (default /etc/krb5.conf).
	Krb5Conf string `yaml:"krb5_conf"`
	// ServicePrincipal is the LDAP service's principal (default ldap/<URL host>).
	ServicePrincipal string `yaml:"service_principal"`
}

// UsersConfig selects the users.
type UsersConfig struct {
	// BaseDN is the search base (required for servers; for LDIF, empty means every entry).
	BaseDN string `yaml:"base_dn"`
	// Scope is sub (default), one or base.
	Scope string `yaml:"scope"`
	// Filter selects users (flavour default when empty).
	Filter string `yaml:"filter"`
	// Attributes to read (flavour default when empty). The id and key attributes are always read.
	Attributes []string `yaml:"attributes"`
	// KeyAttributes are the attributes whose values become keys that references resolve
	// through, besides the DN (default sAMAccountName, userPrincipalName, mail on AD; uid, mail
	// elsewhere).
	KeyAttributes []string `yaml:"key_attributes"`
}

// GroupsConfig selects the groups and says how their members are named.
type GroupsConfig struct {
	// BaseDN is the search base (required for servers; for LDIF, empty means every entry).
	BaseDN string `yaml:"base_dn"`
	// Scope is sub (default), one or base.
	Scope string `yaml:"scope"`
	// Filter selects groups (flavour default when empty).
	Filter string `yaml:"filter"`
	// Attributes to read (flavour default when empty).
	Attributes []string `yaml:"attributes"`
	// MemberAttributes hold member DNs (default member on AD; member and uniqueMember elsewhere).
	MemberAttributes []string `yaml:"member_attributes"`
	// MemberUIDAttributes hold bare member uids (default none on AD; memberUid elsewhere).
	MemberUIDAttributes []string `yaml:"member_uid_attributes"`
	// Nested is client (default: direct members, flattened by the mapping) or server (AD in-chain).
	Nested string `yaml:"nested"`
}

// withDefaults returns the config with the flavour's defaults filled in.
func (c Config) withDefaults() Config {
	d, ok := flavourDefaults[c.FlavourName]
	if !ok {
		return c
	}
	if c.IDAttribute == "" {
		c.IDAttribute = d.idAttribute
	}
	if c.PageSize == 0 {
		c.PageSize = MaxPageSize
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Users.Scope == "" {
		c.Users.Scope = "sub"
	}
	if c.Groups.Scope == "" {
		c.Groups.Scope = "sub"
	}
	if c.Users.Filter == "" {
		c.Users.Filter = d.userFilter
	}
	if c.Groups.Filter == "" {
		c.Groups.Filter = d.groupFilter
	}
	if c.Users.Attributes == nil {
		c.Users.Attributes = d.userAttributes
	}
	if c.Groups.Attributes == nil {
		c.Groups.Attributes = d.groupAttributes
	}
	if c.Users.KeyAttributes == nil {
		c.Users.KeyAttributes = d.keyAttributes
	}
	if c.Groups.MemberAttributes == nil {
		c.Groups.MemberAttributes = d.memberAttributes
	}
	if c.Groups.MemberUIDAttributes == nil {
		c.Groups.MemberUIDAttributes = d.memberUIDAttributes
	}
	if c.Groups.Nested == "" {
		c.Groups.Nested = NestedClient
	}
	if c.Feed.Mode == "" {
		c.Feed.Mode = FeedAuto
	}
	if c.Feed.PollInterval == 0 {
		c.Feed.PollInterval = DefaultPollInterval
	}
	if c.Kerberos != nil && c.Kerberos.Krb5Conf == "" {
		k := *c.Kerberos
		k.Krb5Conf = "/etc/krb5.conf"
		c.Kerberos = &k
	}
	return c
}

// Validate reports every problem in the configuration at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if _, ok := flavourDefaults[c.FlavourName]; !ok {
		add("ldap: flavour %q is not one of active_directory, openldap, generic", c.FlavourName)
	}
	c = c.withDefaults()
	switch {
	case c.URL == "" && c.LDIFFile == "":
		add("ldap: one of url and ldif_file is required")
	case c.URL != "" && c.LDIFFile != "":
		add("ldap: url and ldif_file are both set; use one")
	}
	if c.URL != "" {
		errs = append(errs, c.validateServer()...)
	} else if c.LDIFFile != "" {
		if c.BindDN != "" || c.BindPassword.IsSet() || c.BindPasswordFile != "" || c.Kerberos != nil || c.StartTLS {
			add("ldap: bind and connection settings do not apply to ldif_file")
		}
		if c.Groups.Nested == NestedServer {
			add("ldap: groups.nested server needs a server, not ldif_file")
		}
		if c.Feed.Mode != FeedAuto && c.Feed.Mode != FeedOff {
			add("ldap: feed.mode %s needs a server, not ldif_file", c.Feed.Mode)
		}
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		add("ldap: page_size %d is outside 1..%d", c.PageSize, MaxPageSize)
	}
	if c.DialTimeout < 0 || c.RequestTimeout < 0 {
		add("ldap: dial_timeout and request_timeout must not be negative")
	}
	for _, s := range []struct{ name, scope, filter, base string }{
		{"users", c.Users.Scope, c.Users.Filter, c.Users.BaseDN},
		{"groups", c.Groups.Scope, c.Groups.Filter, c.Groups.BaseDN},
	} {
		if _, err := parseScope(s.scope); err != nil {
			add("ldap: %s.scope: %w", s.name, err)
		}
		if _, err := goldap.CompileFilter(s.filter); err != nil {
			add("ldap: %s.filter %q: %w", s.name, s.filter, err)
		}
		if s.base == "" && c.URL != "" {
			add("ldap: %s.base_dn is required", s.name)
		} else if _, err := goldap.ParseDN(s.base); err != nil {
			add("ldap: %s.base_dn %q: %w", s.name, s.base, err)
		}
	}
	if c.IDAttribute == "" {
		add("ldap: id_attribute is required")
	}
	switch c.Groups.Nested {
	case NestedClient:
	case NestedServer:
		if c.FlavourName != FlavourActiveDirectory {
			add("ldap: groups.nested server needs flavour active_directory (the in-chain rule is AD's)")
		}
	default:
		add("ldap: groups.nested %q is not one of client, server", c.Groups.Nested)
	}
	errs = append(errs, c.Feed.validate(c.FlavourName, c.IDAttribute)...)
	if len(c.Groups.MemberAttributes)+len(c.Groups.MemberUIDAttributes) == 0 {
		add("ldap: groups need at least one of member_attributes and member_uid_attributes")
	}
	return errors.Join(errs...)
}

func (c Config) validateServer() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		add("ldap: url: %w", err)
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		add("ldap: url %q: scheme must be ldap or ldaps", c.URL)
	case u.Host == "":
		add("ldap: url %q has no host", c.URL)
	case u.Scheme == "ldaps" && c.StartTLS:
		add("ldap: start_tls applies to ldap:// urls, not ldaps://")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("ldap: tls.cert_file and tls.key_file go together")
	}
	if c.BindPassword.IsSet() && c.BindPasswordFile != "" {
		add("ldap: bind_password and bind_password_file are both set; use one")
	}
	if c.Kerberos != nil {
		if c.BindDN != "" || c.BindPassword.IsSet() || c.BindPasswordFile != "" {
			add("ldap: kerberos and bind_dn/bind_password are both set; use one")
		}
		if c.Kerberos.Username == "" {
			add("ldap: kerberos.username is required")
		}
		if c.Kerberos.Keytab == "" {
			add("ldap: kerberos.keytab is required")
		}
	} else if c.BindDN != "" && !c.BindPassword.IsSet() && c.BindPasswordFile == "" {
		add("ldap: bind_dn %q has no bind_password or bind_password_file", c.BindDN)
	}
	return errs
}

func parseScope(s string) (int, error) {
	switch strings.ToLower(s) {
	case "sub", "subtree", "":
		return goldap.ScopeWholeSubtree, nil
	case "one", "onelevel", "single":
		return goldap.ScopeSingleLevel, nil
	case "base":
		return goldap.ScopeBaseObject, nil
	}
	return 0, fmt.Errorf("%q is not one of sub, one, base", s)
}

// searchAttributes returns attrs plus the extra names, without duplicates (ignoring case).
func searchAttributes(attrs []string, extra ...string) []string {
	out := make([]string, 0, len(attrs)+len(extra))
	for _, a := range append(slices.Clone(attrs), extra...) {
		if a == "" || slices.ContainsFunc(out, func(b string) bool { return strings.EqualFold(a, b) }) {
			continue
		}
		out = append(out, a)
	}
	return out
}
