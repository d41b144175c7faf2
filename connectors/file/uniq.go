package file

import (
	"strings"

	"github.com/scimbridge/scimbridge/connectors"
)

// uniq indexes the values no two records of a file may share: ids (across users and groups), and,
// ignoring case, userNames, emails and group names, each with the id of the one record that has
// it. A read record by record keeps the index of the last content whose records shared none, so
// that the next content checks only the records it decoded (see parseSplit): the records it
// reused were all in that content together and shared nothing there.
type uniq struct {
	ids                           map[string]string // id -> kind
	userNames, emails, groupNames map[string]string // lower-case value -> id
}

func newUniq(users, groups int) *uniq {
	return &uniq{
		ids:       make(map[string]string, users+groups),
		userNames: make(map[string]string, users), emails: make(map[string]string, users),
		groupNames: make(map[string]string, groups),
	}
}

// uniqueValues returns the values of e that must be unique in their kind, in lower case (""
// when e has none): a user's userName and email, a group's name.
func uniqueValues(kind string, e connectors.Entry) (first, second string) {
	if kind == "group" {
		return strings.ToLower(e.Get("name")), ""
	}
	return strings.ToLower(e.Get("userName")), strings.ToLower(e.Get("email"))
}

// maps returns the maps that hold kind's first and second unique values.
func (u *uniq) maps(kind string) (first, second map[string]string) {
	if kind == "group" {
		return u.groupNames, nil
	}
	return u.userNames, u.emails
}

// add indexes a record that was not in the index's content; false when one of its values is
// already there (the index is then of no further use: the caller drops it).
func (u *uniq) add(dec *decoded) bool {
	id := dec.entry.ID
	if _, dup := u.ids[id]; dup {
		return false
	}
	m1, m2 := u.maps(dec.kind)
	if dec.unique[0] != "" {
		if _, dup := m1[dec.unique[0]]; dup {
			return false
		}
		m1[dec.unique[0]] = id
	}
	if dec.unique[1] != "" {
		if _, dup := m2[dec.unique[1]]; dup {
			return false
		}
		m2[dec.unique[1]] = id
	}
	u.ids[id] = dec.kind
	return true
}

// remove takes out a record of the index's content that the new content no longer has.
func (u *uniq) remove(dec *decoded) {
	delete(u.ids, dec.entry.ID)
	m1, m2 := u.maps(dec.kind)
	if dec.unique[0] != "" {
		delete(m1, dec.unique[0])
	}
	if dec.unique[1] != "" {
		delete(m2, dec.unique[1])
	}
}

// duplicates leaves out, and reports, every record after the first that uses an id (across
// users and groups), a userName, an email or a group name (ignoring case) already used. It
// returns the index of the values when no two records share one, else nil.
func (p *parser) duplicates(d *connectors.Directory) *uniq {
	u := newUniq(len(d.Users), len(d.Groups))
	drop := map[string]map[int]bool{"user": {}, "group": {}}
	check := func(kind string, e connectors.Entry, index int) bool {
		if other, dup := u.ids[e.ID]; dup {
			p.add(kind, e.ID, index, p.lines[kind][index], "id is already used by a %s", other)
			return false
		}
		u.ids[e.ID] = kind
		return true
	}
	unique := func(seen map[string]string, kind, field, value, id string, index int) bool {
		if value == "" {
			return true
		}
		k := strings.ToLower(value)
		if other, dup := seen[k]; dup {
			p.add(kind, id, index, p.lines[kind][index], "%s %q is already used by %s %q", field, value, kind, other)
			return false
		}
		seen[k] = id
		return true
	}
	for i, e := range d.Users {
		if !check("user", e, i) || !unique(u.userNames, "user", "userName", e.Get("userName"), e.ID, i) ||
			!unique(u.emails, "user", "email", e.Get("email"), e.ID, i) {
			drop["user"][i] = true
		}
	}
	for i, g := range d.Groups {
		if !check("group", g, i) || !unique(u.groupNames, "group", "name", g.Get("name"), g.ID, i) {
			drop["group"][i] = true
		}
	}
	keep := func(entries []connectors.Entry, dropped map[int]bool) []connectors.Entry {
		if len(dropped) == 0 {
			return entries
		}
		out := make([]connectors.Entry, 0, len(entries)-len(dropped))
		for i, e := range entries {
			if !dropped[i] {
				out = append(out, e)
			}
		}
		return out
	}
	d.Users = keep(d.Users, drop["user"])
	d.Groups = keep(d.Groups, drop["group"])
	if len(drop["user"]) > 0 || len(drop["group"]) > 0 {
		return nil
	}
	return u
}
