package config

import "path/filepath"

// Relative paths. Every key that names a file is resolved once, when the config is loaded,
// against the folder of the config file, so that a config and the files beside it move together
// and a run behaves the same from any working directory. Load rewrites each such key to an
// absolute path; nothing later joins paths.
//
// Two kinds of path are not resolved:
//   - data_dir stays relative to the working directory. Its default, "data", is what the
//     container image relies on (its working directory is the data volume, its config a read-only
//     mount in /etc/scimbridge), and the quickstart keeps its SQLite files in ./data of the
//     repository while its config is in deploy/examples. Moving it next to the config would
//     strand every existing state store. state.path and target.embedded.data_file, when set, are
//     config-relative like every other file.
//   - file:// secret references are URLs and always absolute (file:///run/secrets/token); a
//     relative secret file goes in the key's *_file sibling.

// filePath is one key that names a file, and the field holding it.
type filePath struct {
	key   string
	field *string
}

// filePaths lists every key of c that names a file and is resolved against the config folder
// (the sections the config leaves out are skipped).
func (c *Config) filePaths() []filePath {
	out := []filePath{
		{"target.token_file", &c.Target.TokenFile},
		{"target.ca_file", &c.Target.CAFile},
		{"target.embedded.data_file", &c.Target.Embedded.DataFile},
		{"state.path", &c.State.Path},
		{"state.url_file", &c.State.URLFile},
		{"service.webhook_secret_file", &c.Service.WebhookSecretFile},
		{"service.bearer_token_file", &c.Service.BearerTokenFile},
		{"service.ui_password_file", &c.Service.UIPasswordFile},
	}
	if f := c.Source.File; f != nil {
		out = append(out, filePath{"source.file.path", &f.Path})
	}
	if g := c.Source.Google; g != nil {
		out = append(out, filePath{"source.google.service_account_key_file", &g.ServiceAccountKeyFile})
	}
	if l := c.Source.LDAP; l != nil {
		out = append(out,
			filePath{"source.ldap.ldif_file", &l.LDIFFile},
			filePath{"source.ldap.bind_password_file", &l.BindPasswordFile},
			filePath{"source.ldap.tls.ca_file", &l.TLS.CAFile},
			filePath{"source.ldap.tls.cert_file", &l.TLS.CertFile},
			filePath{"source.ldap.tls.key_file", &l.TLS.KeyFile},
		)
		if k := l.Kerberos; k != nil {
			out = append(out,
				filePath{"source.ldap.kerberos.keytab", &k.Keytab},
				filePath{"source.ldap.kerberos.krb5_conf", &k.Krb5Conf},
			)
		}
	}
	return out
}

// resolvePaths makes every relative file path of c absolute against dir, the config's folder.
func (c *Config) resolvePaths(dir string) {
	for _, p := range c.filePaths() {
		if *p.field != "" && !filepath.IsAbs(*p.field) {
			*p.field = filepath.Join(dir, *p.field)
		}
	}
}
