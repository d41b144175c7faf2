package ldap

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/go-ldap/ldap/v3/gssapi"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

// dialer holds what connecting and binding need, resolved once at Open.
type dialer struct {
	cfg      Config
	host     string
	tls      *tls.Config // nil for a plain ldap:// URL without StartTLS
	password secret.Secret
	logger   *slog.Logger
}

func newDialer(cfg Config, logger *slog.Logger) (*dialer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ldap: url: %w", err)
	}
	d := &dialer{cfg: cfg, host: u.Hostname(), logger: logger}
	if u.Scheme == "ldaps" || cfg.StartTLS {
		var skipped []error
		if d.tls, skipped, err = buildTLS(cfg.TLS, d.host); err != nil {
			return nil, err
		}
		for _, err := range skipped {
			logger.Warn("ldap: tls.ca_file: a certificate was left out", "error", err.Error())
		}
		if cfg.TLS.InsecureSkipVerify {
			logger.Warn("ldap: TLS certificate verification is OFF (tls.insecure_skip_verify); the bind password and directory data can be intercepted",
				"url", cfg.URL)
		}
	} else if cfg.Kerberos == nil && cfg.BindDN != "" {
		logger.Warn("ldap: simple bind over a plain ldap:// connection sends the password unencrypted; use ldaps:// or start_tls",
			"url", cfg.URL)
	}
	if cfg.Kerberos == nil {
		if d.password, err = cfg.Secrets.Resolve(context.Background(), "bind_password", cfg.BindPassword, cfg.BindPasswordFile); err != nil {
			return nil, fmt.Errorf("ldap: %w", err)
		}
	}
	return d, nil
}

// dial connects, upgrades with StartTLS when configured, and binds.
func (d *dialer) dial() (*goldap.Conn, error) {
	opts := []goldap.DialOpt{goldap.DialWithDialer(&net.Dialer{Timeout: d.cfg.DialTimeout})}
	if d.tls != nil {
		opts = append(opts, goldap.DialWithTLSConfig(d.tls))
	}
	conn, err := goldap.DialURL(d.cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("ldap: dial %s: %w", d.cfg.URL, explainTLS(err))
	}
	conn.SetTimeout(d.cfg.RequestTimeout)
	if d.cfg.StartTLS {
		if err := conn.StartTLS(d.tls); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("ldap: starttls with %s: %w", d.cfg.URL, explainTLS(err))
		}
	}
	if err := d.bind(conn); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

func (d *dialer) bind(conn *goldap.Conn) error {
	switch {
	case d.cfg.Kerberos != nil:
		k := d.cfg.Kerberos
		client, err := gssapi.NewClientWithKeytab(k.Username, k.Realm, k.Keytab, k.Krb5Conf)
		if err != nil {
			return fmt.Errorf("ldap: kerberos client for %q with keytab %q: %w", k.Username, k.Keytab, err)
		}
		defer client.Close()
		spn := k.ServicePrincipal
		if spn == "" {
			spn = "ldap/" + d.host
		}
		if err := conn.GSSAPIBind(client, spn, ""); err != nil {
			return fmt.Errorf("ldap: gssapi bind as %q to %q: %w", k.Username, spn, err)
		}
	case d.cfg.BindDN != "":
		if err := conn.Bind(d.cfg.BindDN, d.password.Reveal()); err != nil {
			return fmt.Errorf("ldap: bind as %q: %w", d.cfg.BindDN, err)
		}
	default:
		if err := conn.UnauthenticatedBind(""); err != nil {
			return fmt.Errorf("ldap: anonymous bind: %w", err)
		}
	}
	return nil
}

// identity names whom the source binds as, for logs and check.
func (c Config) identity() string {
	switch {
	case c.LDIFFile != "":
		return c.LDIFFile
	case c.Kerberos != nil:
		if c.Kerberos.Realm != "" {
			return c.Kerberos.Username + "@" + c.Kerberos.Realm
		}
		return c.Kerberos.Username
	case c.BindDN != "":
		return c.BindDN
	}
	return "anonymous"
}
