package google

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/googleapi"

	"github.com/scimbridge/scimbridge/connectors"
)

var _ connectors.TargetedReader = (*source)(nil)

// knowledge is what the source learned from its last full Read and the targeted reads since:
// enough to name members in a targeted read exactly as a full Read names them, and to turn
// the emails of the Reports API's events into ids.
type knowledge struct {
	// complete is set once a full Read (or a fields-limited index listing) filled it.
	complete bool
	// users: true for a user read, false for one left out on purpose (suspended/archived with
	// "omit", or malformed); absent ids are outside the user query or unknown.
	users map[string]bool
	// outside are user ids that are not users in scope: external members, users outside the
	// user query, deleted users.
	outside map[string]bool
	// selected are the groups the group listing returns; notSelected are member groups known
	// not to be (nested groups a read expanded, groups of other customers).
	selected, notSelected map[string]bool
	// ids maps lower-cased emails and aliases to user or group ids.
	ids map[string]string
	// expandedIn maps a nested group that is not selected to the selected groups whose
	// members inline its own.
	expandedIn map[string][]string
}

func newKnowledge() *knowledge {
	return &knowledge{users: map[string]bool{}, outside: map[string]bool{}, selected: map[string]bool{},
		notSelected: map[string]bool{}, ids: map[string]string{}, expandedIn: map[string][]string{}}
}

func (k *knowledge) learn(id string, emails ...string) {
	for _, e := range emails {
		if e != "" {
			k.ids[strings.ToLower(e)] = id
		}
	}
}

func (s *source) setKnowledge(k *knowledge) {
	s.knowMu.Lock()
	s.know = k
	s.knowMu.Unlock()
}

// knowledge returns a copy of what the source knows (never nil).
func (s *source) snapshot() *knowledge {
	s.knowMu.Lock()
	defer s.knowMu.Unlock()
	c := newKnowledge()
	if s.know == nil {
		return c
	}
	c.complete = s.know.complete
	for k, v := range s.know.users {
		c.users[k] = v
	}
	for k, v := range s.know.outside {
		c.outside[k] = v
	}
	for k, v := range s.know.selected {
		c.selected[k] = v
	}
	for k, v := range s.know.notSelected {
		c.notSelected[k] = v
	}
	for k, v := range s.know.ids {
		c.ids[k] = v
	}
	for k, v := range s.know.expandedIn {
		c.expandedIn[k] = slices.Clone(v)
	}
	return c
}

// update changes what the source knows under its lock.
func (s *source) update(fn func(k *knowledge)) {
	s.knowMu.Lock()
	defer s.knowMu.Unlock()
	if s.know == nil {
		s.know = newKnowledge()
	}
	fn(s.know)
}

// ReadEntries implements connectors.TargetedReader: one users.get per user, and per group one
// groups.get and its members.list (plus those of nested groups that are not selected, which
// it expands as a full Read does), with the fields a full Read asks for. Members are named as
// a full Read names them, from what the last full Read learned; without one (a restart that
// trusts the state store) the source first lists the ids of users and groups once
// (fields-limited pages). A user or group Google does not find, or that is out of scope
// (domain, user_query, group_query, suspended/archived "omit"), is returned in missing.
func (s *source) ReadEntries(ctx context.Context, userIDs, groupIDs []string) (*connectors.Directory, []string, error) {
	before := s.tr.requests.Load()
	if !s.snapshot().complete {
		if err := s.index(ctx); err != nil {
			return nil, nil, err
		}
	}
	d := &connectors.Directory{Users: []connectors.Entry{}, Groups: []connectors.Entry{}}
	var missing []string

	users, err := s.getUsers(ctx, slices.Compact(slices.Sorted(slices.Values(userIDs))))
	if err != nil {
		return nil, nil, err
	}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(userIDs))) {
		u := users[id]
		if u == nil || s.outOfScope(u) {
			missing = append(missing, id)
			continue
		}
		e, err := userEntry(u)
		if err != nil {
			// Left out, as a full read leaves it out.
			s.logger.Warn("google user left out", "user_id", u.Id, "err", err)
			missing = append(missing, id)
			continue
		}
		d.Users = append(d.Users, e)
	}

	gids := slices.Compact(slices.Sorted(slices.Values(groupIDs)))
	groups, err := s.getGroups(ctx, gids)
	if err != nil {
		return nil, nil, err
	}
	var found []*admin.Group
	for _, id := range gids {
		if g := groups[id]; g != nil {
			found = append(found, g)
		} else {
			missing = append(missing, id)
		}
	}
	if len(found) > 0 {
		entries, err := s.readGroupMembers(ctx, found)
		if err != nil {
			return nil, nil, err
		}
		d.Groups = entries
	}
	sort.Strings(missing)
	s.logger.Info("google targeted read", "users", len(d.Users), "groups", len(d.Groups), "missing", len(missing),
		"requests", s.tr.requests.Load()-before)
	return d, missing, nil
}

// index fills the knowledge with the ids of the users and groups in scope, in fields-limited
// pages, when no full Read did.
func (s *source) index(ctx context.Context) error {
	k := newKnowledge()
	call := s.svc.Users.List().MaxResults(usersPageSize)
	if s.cfg.Domain != "" {
		call.Domain(s.cfg.Domain)
	} else {
		call.Customer(s.cfg.Customer)
	}
	if s.cfg.UserQuery != "" {
		call.Query(s.cfg.UserQuery)
	}
	call.Fields("nextPageToken,users(id,primaryEmail,aliases,suspended,archived)")
	err := call.Pages(ctx, func(p *admin.Users) error {
		for _, u := range p.Users {
			k.users[u.Id] = !s.outOfScope(u)
			k.learn(u.Id, append([]string{u.PrimaryEmail}, u.Aliases...)...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("google: index users: %w", err)
	}
	if err := s.listGroupIDs(ctx, k); err != nil {
		return err
	}
	k.complete = true
	s.update(func(old *knowledge) {
		for id, groups := range old.expandedIn {
			k.expandedIn[id] = groups
		}
		*old = *k
	})
	return nil
}

// listGroupIDs lists the selected groups' ids and emails into k.
func (s *source) listGroupIDs(ctx context.Context, k *knowledge) error {
	call := s.svc.Groups.List().MaxResults(groupsPageSize)
	if s.cfg.Domain != "" {
		call.Domain(s.cfg.Domain)
	} else {
		call.Customer(s.cfg.Customer)
	}
	if s.cfg.GroupQuery != "" {
		call.Query(s.cfg.GroupQuery)
	}
	call.Fields("nextPageToken,groups(id,email,aliases)")
	k.selected = map[string]bool{}
	err := call.Pages(ctx, func(p *admin.Groups) error {
		for _, g := range p.Groups {
			k.selected[g.Id] = true
			k.learn(g.Id, append([]string{g.Email}, g.Aliases...)...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("google: index groups: %w", err)
	}
	return nil
}

// each runs fn for every id concurrently (the transport bounds the requests in flight) and
// returns the first error.
func each(ids []string, fn func(id string) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, id := range ids {
		wg.Go(func() {
			if err := fn(id); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// getUsers gets users by id with the fields of a full read; users Google does not find, or
// outside the domain or user query, are absent from the result. What it learns is kept.
func (s *source) getUsers(ctx context.Context, ids []string) (map[string]*admin.User, error) {
	out := map[string]*admin.User{}
	var mu sync.Mutex
	err := each(ids, func(id string) error {
		u, err := s.getUser(ctx, id)
		if err != nil || u == nil {
			return err
		}
		mu.Lock()
		out[id] = u
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.update(func(k *knowledge) {
		for _, id := range ids {
			u := out[id]
			if u == nil {
				delete(k.users, id)
				k.outside[id] = true
				continue
			}
			delete(k.outside, id)
			k.users[id] = !s.outOfScope(u)
			k.learn(id, append([]string{u.PrimaryEmail}, u.Aliases...)...)
		}
	})
	return out, nil
}

// getUser gets one user in scope (nil when not found or out of the domain or user query).
func (s *source) getUser(ctx context.Context, key string) (*admin.User, error) {
	fields := userFields
	call := s.svc.Users.Get(key).Context(ctx)
	if len(s.cfg.CustomSchemas) > 0 {
		call.Projection("custom").CustomFieldMask(strings.Join(s.cfg.CustomSchemas, ","))
		fields += ",customSchemas"
	}
	u, err := call.Fields(googleapi.Field(fields)).Do()
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("google: get user %s: %w", key, err)
	}
	if s.cfg.Domain != "" && !inDomain(u.PrimaryEmail, s.cfg.Domain) {
		return nil, nil
	}
	if s.cfg.UserQuery != "" {
		// Whether the user query selects this user: ask Google, narrowed to its address (a
		// search, which Google may take a while to update for a new user, as for a full read).
		list := s.svc.Users.List().Query(s.cfg.UserQuery + " email='" + strings.ReplaceAll(u.PrimaryEmail, "'", `\'`) + "'").MaxResults(usersPageSize).
			Fields("users(id)").Context(ctx)
		if s.cfg.Domain != "" {
			list.Domain(s.cfg.Domain)
		} else {
			list.Customer(s.cfg.Customer)
		}
		res, err := list.Do()
		if err != nil {
			return nil, fmt.Errorf("google: check user %s against user_query: %w", key, err)
		}
		if !slices.ContainsFunc(res.Users, func(x *admin.User) bool { return x.Id == u.Id }) {
			return nil, nil
		}
	}
	return u, nil
}

func inDomain(email, domain string) bool {
	return strings.HasSuffix(strings.ToLower(email), "@"+strings.ToLower(domain))
}

// getGroups gets the selected groups among ids with the fields of a full read; groups not
// found or not selected are absent. With a group_query, the selection is listed again (ids
// only) first, since a change of email can move a group in or out of it.
func (s *source) getGroups(ctx context.Context, ids []string) (map[string]*admin.Group, error) {
	out := map[string]*admin.Group{}
	if len(ids) == 0 {
		return out, nil
	}
	if s.cfg.GroupQuery != "" {
		k := newKnowledge()
		if err := s.listGroupIDs(ctx, k); err != nil {
			return nil, err
		}
		s.update(func(old *knowledge) {
			old.selected = k.selected
			for e, id := range k.ids {
				old.ids[e] = id
			}
		})
	}
	var mu sync.Mutex
	err := each(ids, func(id string) error {
		g, err := s.getGroup(ctx, id, groupFields)
		if err != nil || g == nil {
			return err
		}
		mu.Lock()
		out[id] = g
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	known := s.snapshot()
	s.update(func(k *knowledge) {
		for _, id := range ids {
			g := out[id]
			switch {
			case g == nil:
				delete(k.selected, id)
				k.notSelected[id] = true
			case s.cfg.GroupQuery != "" && !known.selected[id]:
				delete(out, id) // outside the group query
			default:
				k.selected[id] = true
				delete(k.notSelected, id)
				k.learn(id, append([]string{g.Email}, g.Aliases...)...)
			}
		}
	})
	return out, nil
}

// getGroup gets one group by id or email (nil when Google does not find it or it is outside
// the domain).
func (s *source) getGroup(ctx context.Context, key, fields string) (*admin.Group, error) {
	g, err := s.svc.Groups.Get(key).Fields(googleapi.Field(fields)).Context(ctx).Do()
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("google: get group %s: %w", key, err)
	}
	if s.cfg.Domain != "" && !inDomain(g.Email, s.cfg.Domain) {
		return nil, nil
	}
	return g, nil
}

// readGroupMembers lists the members of the groups (and of the nested groups they expand)
// and builds their entries as a full Read would.
func (s *source) readGroupMembers(ctx context.Context, groups []*admin.Group) ([]connectors.Entry, error) {
	ms := &memberSet{m: map[string][]*admin.Member{}, unreadable: map[string]bool{}}
	list := func(ids []string, nested bool) error {
		return each(ids, func(id string) error {
			l, err := s.listMembers(ctx, id)
			unreadable := nested && isNotFound(err)
			if err != nil && !unreadable {
				return err
			}
			ms.mu.Lock()
			ms.m[id] = l
			if unreadable {
				ms.unreadable[id] = true
			}
			ms.mu.Unlock()
			return nil
		})
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.Id
	}
	if err := list(ids, false); err != nil {
		return nil, err
	}
	// Member groups and users the source has not seen yet (created since the last full read)
	// are looked up, so that they are named as a full read would name them.
	if err := s.learnMembers(ctx, ms); err != nil {
		return nil, err
	}
	view := s.snapshot()
	if s.cfg.NestedGroups == Expand {
		for {
			var next []string
			for _, id := range ms.missingGroups() {
				if !view.selected[id] {
					next = append(next, id)
				}
			}
			if len(next) == 0 {
				break
			}
			if err := list(next, true); err != nil {
				return nil, err
			}
			if err := s.learnMembers(ctx, ms); err != nil {
				return nil, err
			}
			view = s.snapshot()
		}
	}
	v := scopeView{users: view.users, selected: view.selected, unreadable: ms.unreadable}
	var st readStats
	out := make([]connectors.Entry, 0, len(groups))
	for _, g := range groups {
		refs, expanded := s.memberRefs(g.Id, ms.m, v, &st)
		s.update(func(k *knowledge) {
			for _, n := range expanded {
				k.notSelected[n] = true
				if !slices.Contains(k.expandedIn[n], g.Id) {
					k.expandedIn[n] = append(k.expandedIn[n], g.Id)
				}
			}
		})
		out = append(out, groupEntry(g, refs))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// learnMembers looks up member users and groups the source does not know yet.
func (s *source) learnMembers(ctx context.Context, ms *memberSet) error {
	known := s.snapshot()
	var users, groups []string
	ms.mu.Lock()
	for _, list := range ms.m {
		for _, m := range list {
			switch {
			case m.Id == "":
			case m.Type == memberUser:
				if _, ok := known.users[m.Id]; !ok && !known.outside[m.Id] && !slices.Contains(users, m.Id) {
					users = append(users, m.Id)
				}
			case m.Type == memberGroup:
				if !known.selected[m.Id] && !known.notSelected[m.Id] && s.cfg.GroupQuery == "" && !slices.Contains(groups, m.Id) {
					groups = append(groups, m.Id)
				}
			}
		}
	}
	ms.mu.Unlock()
	if len(users) > 0 {
		// A member outside the customer (an external address) is not found: it stays unknown
		// and is named by its email, as a full read names it.
		if _, err := s.getUsers(ctx, users); err != nil {
			return err
		}
	}
	return each(groups, func(id string) error {
		g, err := s.getGroup(ctx, id, "id,email,aliases")
		if err != nil {
			return err
		}
		s.update(func(k *knowledge) {
			if g != nil {
				k.selected[id] = true
				k.learn(id, append([]string{g.Email}, g.Aliases...)...)
			} else {
				k.notSelected[id] = true
			}
		})
		return nil
	})
}
