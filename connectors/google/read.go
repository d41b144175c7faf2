package google

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/googleapi"

	"github.com/scimbridge/scimbridge/connectors"
)

// Page sizes: the most each Directory API list call allows.
const (
	usersPageSize   = 500
	groupsPageSize  = 200
	membersPageSize = 200
)

// Member types as Members.List reports them.
const (
	memberUser     = "USER"
	memberGroup    = "GROUP"
	memberCustomer = "CUSTOMER"
)

// CustomerPrefix starts the member reference a group gets for a CUSTOMER member ("every user
// of the customer"): such members are not expanded, and the reference resolves to nothing, so
// the mapping reports it as left out.
const CustomerPrefix = "customer:"

// Read lists users, groups and the members of every group (flattening nested groups as
// configured), concurrently within Config.Concurrency. Any failed page, after its retries,
// fails the whole read: the error is returned with no Directory.
func (s *source) Read(ctx context.Context) (*connectors.Directory, error) {
	start := time.Now()
	before, retriesBefore := s.tr.requests.Load(), s.tr.retries.Load()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		readErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { readErr = err; cancel(err) })
	}

	var users []*admin.User
	wg.Go(func() {
		var err error
		if users, err = s.listUsers(urgent(ctx)); err != nil {
			fail(err)
		}
	})

	// Groups are listed page by page; each page's groups go straight to the member workers,
	// so member lists start while later group pages are still being fetched.
	var groups []*admin.Group
	// Room for two pages of groups, so the next page is fetched while workers are busy.
	jobs := make(chan string, 2*groupsPageSize)
	wg.Go(func() {
		defer close(jobs)
		err := s.listGroups(urgent(ctx), func(page []*admin.Group) error {
			groups = append(groups, page...)
			for _, g := range page {
				select {
				case jobs <- g.Id:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
			return nil
		})
		if err != nil {
			fail(err)
		}
	})
	members := &memberSet{m: map[string][]*admin.Member{}, unreadable: map[string]bool{}}
	s.memberWorkers(ctx, &wg, jobs, members, false, fail)
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}

	// Expanding ourselves: nested groups outside the selection are listed too, level by
	// level, so their members can be inlined.
	if s.cfg.NestedGroups == Expand {
		for {
			missing := members.missingGroups()
			if len(missing) == 0 {
				break
			}
			jobs := make(chan string)
			var wg sync.WaitGroup
			wg.Go(func() {
				defer close(jobs)
				for _, id := range missing {
					select {
					case jobs <- id:
					case <-ctx.Done():
						return
					}
				}
			})
			s.memberWorkers(ctx, &wg, jobs, members, true, fail)
			wg.Wait()
			if readErr != nil {
				return nil, readErr
			}
		}
	}

	d, stats, k := s.assemble(users, groups, members)
	s.setKnowledge(k)
	s.logger.Info("google directory read",
		"users", len(d.Users), "groups", len(d.Groups), "omitted_users", stats.omitted,
		"external_members", stats.external, "customer_members", stats.customer,
		"requests", s.tr.requests.Load()-before, "retries", s.tr.retries.Load()-retriesBefore,
		"duration", time.Since(start).Round(time.Millisecond))
	return d, nil
}

// memberSet holds the members listed per group id.
type memberSet struct {
	mu sync.Mutex
	m  map[string][]*admin.Member
	// unreadable are nested groups Google does not know in this customer (404): groups of
	// another organisation, left out like external users.
	unreadable map[string]bool
}

// missingGroups returns the ids of member groups whose members were not listed, sorted.
func (ms *memberSet) missingGroups() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, list := range ms.m {
		for _, m := range list {
			if m.Type == memberGroup && m.Id != "" && !seen[m.Id] {
				seen[m.Id] = true
				if _, ok := ms.m[m.Id]; !ok {
					out = append(out, m.Id)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// memberWorkers starts Concurrency workers listing the members of the groups sent on jobs.
// With nested, a group that Google does not find is marked unreadable instead of failing.
func (s *source) memberWorkers(ctx context.Context, wg *sync.WaitGroup, jobs <-chan string, into *memberSet, nested bool, fail func(error)) {
	for range s.cfg.Concurrency {
		wg.Go(func() {
			for id := range jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				list, err := s.listMembers(ctx, id)
				unreadable := nested && isNotFound(err)
				if err != nil && !unreadable {
					fail(err)
					continue
				}
				into.mu.Lock()
				into.m[id] = list
				if unreadable {
					into.unreadable[id] = true
				}
				into.mu.Unlock()
			}
		})
	}
}

func (s *source) listUsers(ctx context.Context) ([]*admin.User, error) {
	fields := userFields
	call := s.svc.Users.List().MaxResults(usersPageSize)
	if s.cfg.Domain != "" {
		call.Domain(s.cfg.Domain)
	} else {
		call.Customer(s.cfg.Customer)
	}
	if s.cfg.UserQuery != "" {
		call.Query(s.cfg.UserQuery)
	}
	if len(s.cfg.CustomSchemas) > 0 {
		call.Projection("custom").CustomFieldMask(strings.Join(s.cfg.CustomSchemas, ","))
		fields += ",customSchemas"
	}
	call.Fields(googleapi.Field("nextPageToken,users(" + fields + ")"))
	var out []*admin.User
	pages := 0
	err := call.Pages(ctx, func(p *admin.Users) error {
		pages++
		out = append(out, p.Users...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("google: list users (page %d): %w", pages+1, err)
	}
	return out, nil
}

func (s *source) listGroups(ctx context.Context, each func([]*admin.Group) error) error {
	call := s.svc.Groups.List().MaxResults(groupsPageSize)
	if s.cfg.Domain != "" {
		call.Domain(s.cfg.Domain)
	} else {
		call.Customer(s.cfg.Customer)
	}
	if s.cfg.GroupQuery != "" {
		call.Query(s.cfg.GroupQuery)
	}
	call.Fields(googleapi.Field("nextPageToken,groups(" + groupFields + ")"))
	pages := 0
	err := call.Pages(ctx, func(p *admin.Groups) error {
		pages++
		return each(p.Groups)
	})
	if err != nil {
		return fmt.Errorf("google: list groups (page %d): %w", pages+1, err)
	}
	return nil
}

func (s *source) listMembers(ctx context.Context, groupID string) ([]*admin.Member, error) {
	call := s.svc.Members.List(groupID).MaxResults(membersPageSize).
		Fields(googleapi.Field("nextPageToken,members(" + memberFields + ")"))
	if s.cfg.NestedGroups == Derived {
		call.IncludeDerivedMembership(true)
	}
	var out []*admin.Member
	pages := 0
	err := call.Pages(ctx, func(p *admin.Members) error {
		pages++
		out = append(out, p.Members...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("google: list members of group %s (page %d): %w", groupID, pages+1, err)
	}
	return out, nil
}

type readStats struct{ omitted, external, customer int }

// scopeView says how member references are named: which users were read (true) or left out on
// purpose (false), which groups are selected, and which nested groups Google does not know.
type scopeView struct {
	users      map[string]bool
	selected   map[string]bool
	unreadable map[string]bool
}

// assemble builds the Directory: users filtered by the suspended/archived policy, groups with
// member references (see memberRefs). It also returns what the read learned for targeted
// reads.
func (s *source) assemble(users []*admin.User, groups []*admin.Group, ms *memberSet) (*connectors.Directory, readStats, *knowledge) {
	var st readStats
	d := &connectors.Directory{Users: []connectors.Entry{}, Groups: []connectors.Entry{}}
	view := scopeView{users: map[string]bool{}, selected: map[string]bool{}, unreadable: ms.unreadable}
	k := newKnowledge()
	for _, u := range users {
		k.learn(u.Id, append([]string{u.PrimaryEmail}, u.Aliases...)...)
		if s.outOfScope(u) {
			view.users[u.Id] = false
			st.omitted++
			continue
		}
		e, err := userEntry(u)
		if err != nil {
			// A malformed user is logged and left out; the mapping never sees it.
			s.logger.Warn("google user left out", "user_id", u.Id, "err", err)
			view.users[u.Id] = false
			continue
		}
		view.users[u.Id] = true
		d.Users = append(d.Users, e)
	}
	for _, g := range groups {
		view.selected[g.Id] = true
		k.learn(g.Id, append([]string{g.Email}, g.Aliases...)...)
	}
	for _, g := range groups {
		refs, expanded := s.memberRefs(g.Id, ms.m, view, &st)
		for _, n := range expanded {
			k.expandedIn[n] = append(k.expandedIn[n], g.Id)
			k.notSelected[n] = true
		}
		d.Groups = append(d.Groups, groupEntry(g, refs))
	}
	sort.Slice(d.Users, func(i, j int) bool { return d.Users[i].ID < d.Users[j].ID })
	sort.Slice(d.Groups, func(i, j int) bool { return d.Groups[i].ID < d.Groups[j].ID })
	for id := range ms.unreadable {
		k.notSelected[id] = true
	}
	for _, list := range ms.m {
		for _, m := range list {
			if _, ok := view.users[m.Id]; m.Type == memberUser && !ok {
				k.outside[m.Id] = true
			}
		}
	}
	k.users, k.selected, k.complete = view.users, view.selected, true
	return d, st, k
}

// outOfScope reports whether the suspended/archived policy leaves u out.
func (s *source) outOfScope(u *admin.User) bool {
	return (u.Suspended && s.cfg.Suspended == Omit) || (u.Archived && s.cfg.Archived == Omit)
}

// memberRefs returns the sorted member references of group id, from the direct (or, with
// derived nesting, every) member lists in members: a member user that was read is named by
// its id; one left out on purpose (suspended/archived with "omit") is dropped; any other
// (external to the domain, or outside the user query) is named by its email, so the mapping
// reports it as an unresolved member. Selected groups are named by id; others are expanded in
// place (their ids are returned as expanded). A CUSTOMER member is "customer:<id>".
func (s *source) memberRefs(id string, members map[string][]*admin.Member, v scopeView, st *readStats) (refs, expanded []string) {
	userRef := func(m *admin.Member) (string, bool) {
		read, known := v.users[m.Id]
		switch {
		case known && read:
			return m.Id, true
		case known:
			return "", false
		}
		st.external++
		return cmp.Or(m.Email, m.Id), true
	}
	if s.cfg.NestedGroups == Derived {
		for _, m := range members[id] {
			switch m.Type {
			case memberUser:
				if r, ok := userRef(m); ok {
					refs = append(refs, r)
				}
			case memberCustomer:
				st.customer++
				refs = append(refs, CustomerPrefix+m.Id)
			}
			// GROUP members: Google already listed their members (derived).
		}
	} else {
		visited := map[string]bool{id: true}
		var walk func(gid string)
		walk = func(gid string) {
			for _, m := range members[gid] {
				switch m.Type {
				case memberUser:
					if r, ok := userRef(m); ok {
						refs = append(refs, r)
					}
				case memberCustomer:
					st.customer++
					refs = append(refs, CustomerPrefix+m.Id)
				case memberGroup:
					switch {
					case m.Id == id: // a cycle back to the group itself
					case v.selected[m.Id]:
						refs = append(refs, m.Id) // the mapping flattens selected groups
					case v.unreadable[m.Id]:
						st.external++
						refs = append(refs, cmp.Or(m.Email, m.Id))
					case !visited[m.Id]:
						visited[m.Id] = true
						expanded = append(expanded, m.Id)
						walk(m.Id)
					}
				}
			}
		}
		walk(id)
	}
	sort.Strings(refs)
	return slices.Compact(refs), expanded
}

// isNotFound reports whether err is Google's 404.
func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}
