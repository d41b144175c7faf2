package ldap

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
)

// adCapability is the supportedCapabilities OID an Active Directory (or Samba AD) DC announces.
const adCapability = "1.2.840.113556.1.4.800"

// Check binds, reads the root DSE for the server's vendor, and reads the directory to count
// what is in scope. A failed bind or read is an error.
func (s *source) Check(ctx context.Context) (connectors.CheckReport, error) {
	rep := connectors.CheckReport{Identity: s.cfg.identity(), Details: map[string]string{
		"url":            s.cfg.URL,
		"flavour":        s.cfg.FlavourName,
		"users_base_dn":  s.cfg.Users.BaseDN,
		"groups_base_dn": s.cfg.Groups.BaseDN,
	}}
	conn, err := s.connect()
	if err != nil {
		return rep, err
	}
	if state, ok := conn.TLSConnectionState(); ok {
		rep.Details["tls"] = tlsVersion(state.Version)
	} else {
		rep.Details["tls"] = "none"
	}
	if who, err := conn.WhoAmI(nil); err == nil && who.AuthzID != "" {
		rep.Identity = strings.TrimPrefix(who.AuthzID, "dn:")
	}
	req := goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"vendorName", "vendorVersion", "supportedCapabilities",
			"defaultNamingContext", "namingContexts", "dnsHostName", "domainControllerFunctionality"}, nil)
	res, err := conn.Search(req)
	if err != nil {
		_ = s.Close()
		return rep, fmt.Errorf("ldap: read root DSE: %w", err)
	}
	if len(res.Entries) == 1 {
		dse := res.Entries[0]
		rep.Details["vendor"] = vendor(dse)
		for _, a := range []string{"defaultNamingContext", "dnsHostName"} {
			if v := dse.GetAttributeValue(a); v != "" {
				rep.Details[a] = v
			}
		}
	}
	dir, err := s.Read(ctx)
	if err != nil {
		return rep, err
	}
	rep.Details["users"] = strconv.Itoa(len(dir.Users))
	rep.Details["groups"] = strconv.Itoa(len(dir.Groups))
	return rep, nil
}

func vendor(dse *goldap.Entry) string {
	if slices.Contains(dse.GetAttributeValues("supportedCapabilities"), adCapability) {
		v := "Active Directory"
		if n := dse.GetAttributeValue("vendorName"); n != "" {
			v += " (" + n + ")" // Samba announces itself here; Windows leaves it empty
		}
		return v
	}
	v := strings.TrimSpace(dse.GetAttributeValue("vendorName") + " " + dse.GetAttributeValue("vendorVersion"))
	if v == "" {
		return "unknown"
	}
	return v
}

func tlsVersion(v uint16) string {
	switch v {
	case 0x0304:
		return "TLS 1.3"
	case 0x0303:
		return "TLS 1.2"
	}
	return fmt.Sprintf("TLS 0x%04x", v)
}
