package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

// ldapFresh drives an LDAP server for the freshness bench: the generated directory is added
// over LDAP, and each change is made as the directory's admin would make it (add, delete,
// modify of mail or userPrincipalName, member values).
type ldapFresh struct {
	url, bindDN, bindPW string
	people, groups      string // container DNs
	ad                  bool
	yaml                string // the source section

	proxy *ldaptest.Proxy // counts serve's requests
	conn  *goldap.Conn
	mu    sync.Mutex
	ext   map[string]string // generated id -> externalId
}

// newSlapdFresh starts a slapd with the syncprov overlay (syncrepl refreshAndPersist); serve
// reaches it in plain LDAP through a proxy that counts its requests.
func newSlapdFresh(t *testing.T) *ldapFresh {
	s := ldaptest.StartSlapd(t, ldaptest.SlapdOptions{})
	proxy := ldaptest.StartProxy(t, strings.TrimPrefix(s.URL, "ldap://"))
	people, groups := "ou=people,"+ldaptest.SlapdSuffix, "ou=groups,"+ldaptest.SlapdSuffix
	return &ldapFresh{url: s.URL, bindDN: ldaptest.SlapdRootDN, bindPW: ldaptest.SlapdRootPW, people: people, groups: groups, proxy: proxy,
		yaml: fmt.Sprintf(`  type: ldap
  ldap:
    flavour: openldap
    url: %s
    bind_dn: %s
    bind_password: %s
    users: {base_dn: "%s"}
    groups: {base_dn: "%s"}
    feed: {mode: syncrepl}
`, proxy.URL, ldaptest.SlapdReaderDN, ldaptest.SlapdReaderPW, people, groups)}
}

// SourceRequests counts the LDAP requests serve sent through the proxy (the AD driver has none).
func (f *ldapFresh) SourceRequests() int64 {
	if f.proxy == nil {
		return -1
	}
	return f.proxy.Requests()
}

// newSambaFresh uses the Samba AD DC fixture (fixed ports 389/636/88: never run it beside the
// LDAP connector's tests) with the DirSync feed polling every 5 s, in OUs of its own.
func newSambaFresh(t *testing.T) *ldapFresh {
	s := ldaptest.SharedSamba(t)
	t.Cleanup(ldaptest.StopSamba)
	ou := "OU=freshness-bench," + ldaptest.SambaBaseDN
	people, groups := "OU=people,"+ou, "OU=groups,"+ou
	f := &ldapFresh{url: s.URL, bindDN: ldaptest.SambaAdmin, bindPW: ldaptest.SambaPassword, people: people, groups: groups, ad: true,
		yaml: fmt.Sprintf(`  type: ldap
  ldap:
    flavour: active_directory
    url: %s
    start_tls: true
    tls: {ca_file: %s}
    bind_dn: %s
    bind_password: %s
    users: {base_dn: "%s"}
    groups: {base_dn: "%s"}
    feed: {mode: dirsync, poll_interval: 5s}
`, s.URL, s.PKI.CAFile, ldaptest.SambaAdmin, ldaptest.SambaPassword, people, groups)}
	return f
}

func (f *ldapFresh) userDN(d *Directory, i int) string {
	return "CN=" + d.users[i].id + "," + f.people
}

func (f *ldapFresh) groupDN(d *Directory, g int) string {
	return "CN=" + d.groups[g].name + "," + f.groups
}

func (f *ldapFresh) userEntry(d *Directory, i int) *goldap.AddRequest {
	u := d.users[i]
	r := goldap.NewAddRequest(f.userDN(d, i), nil)
	if f.ad {
		r.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
		r.Attribute("sAMAccountName", []string{u.id})
		r.Attribute("userPrincipalName", []string{u.email})
		r.Attribute("department", []string{u.dept})
	} else {
		r.Attribute("objectClass", []string{"inetOrgPerson"})
		r.Attribute("uid", []string{u.id})
		r.Attribute("departmentNumber", []string{u.dept})
	}
	r.Attribute("cn", []string{u.id})
	r.Attribute("sn", []string{u.last})
	r.Attribute("givenName", []string{u.first})
	r.Attribute("displayName", []string{u.first + " " + u.last})
	r.Attribute("mail", []string{u.email})
	r.Attribute("title", []string{u.title})
	return r
}

func (f *ldapFresh) Setup(ctx context.Context, d *Directory, _, _ string) (string, error) {
	conn, err := goldap.DialURL(f.url)
	if err != nil {
		return "", err
	}
	if err := conn.Bind(f.bindDN, f.bindPW); err != nil {
		conn.Close()
		return "", err
	}
	f.conn, f.ext = conn, map[string]string{}
	if f.ad {
		// The bench's own OUs, emptied of an earlier run's entries.
		ou := strings.TrimPrefix(f.people, "OU=people,")
		f.deleteTree(ou)
		for _, dn := range []string{ou, f.people, f.groups} {
			r := goldap.NewAddRequest(dn, nil)
			r.Attribute("objectClass", []string{"top", "organizationalUnit"})
			if err := conn.Add(r); err != nil {
				return "", fmt.Errorf("add %s: %w", dn, err)
			}
		}
	}
	for i := range d.users {
		if !d.alive[i] {
			continue
		}
		if err := conn.Add(f.userEntry(d, i)); err != nil {
			return "", fmt.Errorf("add user %s: %w", d.users[i].id, err)
		}
	}
	for i, u := range d.users {
		if u.manager == "" || !d.alive[i] {
			continue
		}
		var mi int
		fmt.Sscanf(u.manager, "u-%d", &mi)
		m := goldap.NewModifyRequest(f.userDN(d, i), nil)
		m.Replace("manager", []string{f.userDN(d, mi)})
		if err := conn.Modify(m); err != nil {
			return "", fmt.Errorf("set manager of %s: %w", u.id, err)
		}
	}
	// Children first, so that every member DN exists when its group is added.
	for gi := len(d.groups) - 1; gi >= 0; gi-- {
		g := d.groups[gi]
		r := goldap.NewAddRequest(f.groupDN(d, gi), nil)
		var members []string
		for _, m := range g.members {
			if d.alive[m] {
				members = append(members, f.userDN(d, m))
			}
		}
		for _, c := range g.children {
			members = append(members, f.groupDN(d, c))
		}
		if f.ad {
			r.Attribute("objectClass", []string{"top", "group"})
			r.Attribute("sAMAccountName", []string{g.name})
		} else {
			r.Attribute("objectClass", []string{"groupOfNames"})
			if len(members) == 0 {
				members = []string{ldaptest.SlapdReaderDN} // groupOfNames needs a member; it maps to none
			}
		}
		r.Attribute("cn", []string{g.name})
		if len(members) > 0 {
			r.Attribute("member", members)
		}
		if err := conn.Add(r); err != nil {
			return "", fmt.Errorf("add group %s: %w", g.id, err)
		}
	}
	for i := range d.users {
		if d.alive[i] {
			if err := f.learn(d.users[i].id, f.userDN(d, i)); err != nil {
				return "", err
			}
		}
	}
	for gi := range d.groups {
		if err := f.learn(d.groups[gi].id, f.groupDN(d, gi)); err != nil {
			return "", err
		}
	}
	return f.yaml, nil
}

// learn reads the entry's stable id, as the connector renders it.
func (f *ldapFresh) learn(id, dn string) error {
	attr := "entryUUID"
	if f.ad {
		attr = "objectGUID"
	}
	res, err := f.conn.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) != 1 {
		return fmt.Errorf("read the %s of %s: %v", attr, dn, err)
	}
	v := res.Entries[0].GetAttributeValue(attr)
	if f.ad {
		if v, err = ldap.GUIDString(res.Entries[0].GetRawAttributeValue(attr)); err != nil {
			return fmt.Errorf("read the %s of %s: %w", attr, dn, err)
		}
	}
	f.mu.Lock()
	f.ext[id] = v
	f.mu.Unlock()
	return nil
}

func (f *ldapFresh) deleteTree(dn string) {
	res, err := f.conn.Search(goldap.NewSearchRequest(dn, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		return
	}
	// Deepest first.
	for i := len(res.Entries) - 1; i >= 0; i-- {
		_ = f.conn.Del(goldap.NewDelRequest(res.Entries[i].DN, nil))
	}
}

func (f *ldapFresh) member(dn string, add bool, groupDN string) error {
	m := goldap.NewModifyRequest(groupDN, nil)
	if add {
		m.Add("member", []string{dn})
	} else {
		m.Delete("member", []string{dn})
	}
	return f.conn.Modify(m)
}

func (f *ldapFresh) Apply(_ context.Context, d *Directory, c *FreshChange) error {
	dn := f.userDN(d, c.User)
	switch c.Kind {
	case KindJoiner:
		if err := f.conn.Add(f.userEntry(d, c.User)); err != nil {
			return err
		}
		if err := f.learn(d.users[c.User].id, dn); err != nil {
			return err
		}
		return f.member(dn, true, f.groupDN(d, c.Group))
	case KindLeaver:
		if f.ad {
			// AD keeps no dangling member values; slapd's refint overlay removes them.
			for _, g := range d.groupsOf(c.User) { // the generated directory keeps a leaver's groups
				_ = f.member(dn, false, f.groupDN(d, g))
			}
		}
		return f.conn.Del(goldap.NewDelRequest(dn, nil))
	case KindRename:
		m := goldap.NewModifyRequest(dn, nil)
		m.Replace("mail", []string{c.UserName})
		if f.ad {
			m.Replace("userPrincipalName", []string{c.UserName})
		}
		return f.conn.Modify(m)
	case KindMove:
		if err := f.member(dn, false, f.groupDN(d, c.From)); err != nil {
			return err
		}
		return f.member(dn, true, f.groupDN(d, c.Group))
	case KindNested:
		return f.member(dn, true, f.groupDN(d, c.Group))
	}
	return fmt.Errorf("unknown change kind %q", c.Kind)
}

func (f *ldapFresh) ExternalID(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.ext[id]; ok {
		return v
	}
	return "unknown:" + id
}

func (f *ldapFresh) Close() error {
	if f.conn != nil {
		if f.ad {
			f.deleteTree(strings.TrimPrefix(f.people, "OU=people,"))
		}
		f.conn.Close()
	}
	return nil
}
