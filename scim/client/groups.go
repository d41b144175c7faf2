package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/scimbridge/scimbridge/scim"
)

// ErrTruncated: a listing of a target without paging came back exactly at its cap, so it may have
// left objects out. A partial read must never be taken for the whole directory.
var ErrTruncated = errors.New("scim: listing may be truncated")

type scimGroup struct {
	Schemas     []string    `json:"schemas,omitempty"`
	ID          string      `json:"id,omitempty"`
	ExternalID  string      `json:"externalId,omitempty"`
	DisplayName string      `json:"displayName"`
	Members     []scimValue `json:"members,omitempty"`
	Meta        *scimMeta   `json:"meta,omitempty"` // read only; never sent
}

func (g *scimGroup) toTarget() scim.TargetGroup {
	return scim.TargetGroup{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.DisplayName, Created: g.Meta.created()}
}

// listResponse is a page of a listing, in both paging forms.
type listResponse[T any] struct {
	TotalResults *int   `json:"totalResults"`
	ItemsPerPage int    `json:"itemsPerPage"`
	StartIndex   int    `json:"startIndex"`
	NextCursor   string `json:"nextCursor"`
	Resources    []T    `json:"Resources"`
}

// GroupPatch is a change to one group: a new display name and/or externalId (nil: unchanged),
// and target user ids to add and remove. Add and Remove together may hold at most the profile's
// MaxMembersPerRequest ids.
type GroupPatch struct {
	DisplayName *string
	ExternalID  *string
	Add         []string
	Remove      []string
}

func memberValues(ids []string) []scimValue {
	vs := make([]scimValue, len(ids))
	for i, id := range ids {
		vs[i] = scimValue{Value: id}
	}
	return vs
}

// CreateGroup creates g (POST /Groups) carrying memberIDs (target user ids; at most the
// profile's MaxMembersPerRequest) and returns its id; g.Members is ignored. A duplicate
// displayName fails with an error matching ErrConflict.
func (c *Client) CreateGroup(ctx context.Context, g scim.Group, memberIDs []string) (string, error) {
	if n := len(memberIDs); n > c.profile.MaxMembersPerRequest {
		return "", fmt.Errorf("scim: create group %s: %d members, the target takes at most %d in one request",
			quote(g.DisplayName), n, c.profile.MaxMembersPerRequest)
	}
	body := scimGroup{Schemas: []string{SchemaGroup}, ExternalID: g.ExternalID, DisplayName: g.DisplayName}
	if len(memberIDs) > 0 {
		body.Members = memberValues(memberIDs)
	}
	var out scimGroup
	if err := c.call(ctx, "CreateGroup", "POST", "/Groups", nil, body, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("scim: POST /Groups: the answer carries no id for group %s", quote(g.DisplayName))
	}
	return out.ID, nil
}

// PatchGroup applies p to group id in one PATCH request; an empty patch sends nothing.
func (c *Client) PatchGroup(ctx context.Context, id string, p GroupPatch) error {
	if id == "" {
		return errors.New("scim: patch group: empty id")
	}
	if n := len(p.Add) + len(p.Remove); n > c.profile.MaxMembersPerRequest {
		return fmt.Errorf("scim: patch group %s: %d membership changes, the target takes at most %d in one request",
			id, n, c.profile.MaxMembersPerRequest)
	}
	var ops []patchOp
	if p.DisplayName != nil {
		ops = append(ops, patchOp{Op: "replace", Path: "displayName", Value: *p.DisplayName})
	}
	if p.ExternalID != nil {
		ops = append(ops, patchOp{Op: "replace", Path: "externalId", Value: *p.ExternalID})
	}
	if len(p.Add) > 0 {
		ops = append(ops, patchOp{Op: "add", Path: "members", Value: memberValues(p.Add)})
	}
	switch {
	case len(p.Remove) > 0 && c.profile.RemoveByFilter:
		// RFC 7644 3.5.2.2: a remove of "members" without a value filter may remove every member,
		// whatever values it lists; one operation per member with a filter removes just that one.
		for _, uid := range p.Remove {
			ops = append(ops, patchOp{Op: "remove", Path: memberPath(uid)})
		}
	case len(p.Remove) > 0:
		// Identity Center's documented form: never without a value, which would remove every
		// member (and which Identity Center refuses).
		ops = append(ops, patchOp{Op: "remove", Path: "members", Value: memberValues(p.Remove)})
	}
	if len(ops) == 0 {
		return nil
	}
	body := patchRequest{Schemas: []string{SchemaPatchOp}, Operations: ops}
	return c.call(ctx, "PatchGroup", "PATCH", "/Groups/"+url.PathEscape(id), nil, body, nil)
}

// memberPath is the PATCH path of one member, members[value eq "<id>"], with the id escaped as
// a SCIM string so that no id can change the filter.
func memberPath(uid string) string {
	return "members[" + filterEq("value", uid) + "]"
}

// DeleteGroup deletes group id. A group that is already gone fails with an error matching
// ErrNotFound.
func (c *Client) DeleteGroup(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("scim: delete group: empty id")
	}
	return c.call(ctx, "DeleteGroup", "DELETE", "/Groups/"+url.PathEscape(id), nil, nil, nil)
}

// FindGroup returns the group whose attr ("displayName" or "externalId") equals value, or nil
// and no error when there is none. Members are not read.
func (c *Client) FindGroup(ctx context.Context, attr, value string) (*scim.TargetGroup, error) {
	if attr != "displayName" && attr != "externalId" {
		return nil, fmt.Errorf("scim: find group by %q: want displayName or externalId", attr)
	}
	var page listResponse[scimGroup]
	q := url.Values{"filter": {filterEq(attr, value)}}
	if err := c.call(ctx, "ListGroups", "GET", "/Groups", q, nil, &page); err != nil {
		return nil, err
	}
	if len(page.Resources) == 0 {
		return nil, nil
	}
	g := page.Resources[0].toTarget()
	return &g, nil
}

// list reads every page of a listing of path (with an optional filter) and calls each for
// every resource. It pages the profile's way and refuses to return a listing that a target
// without paging may have cut short.
func list[T any](ctx context.Context, c *Client, op, path, filter string, each func(T)) error {
	set, err := c.settings(ctx)
	if err != nil {
		return err
	}
	size := set.pageSize
	cursor := ""
	start := 1
	seen := 0
	for page := 0; ; page++ {
		q := url.Values{"count": {strconv.Itoa(size)}}
		if filter != "" {
			q.Set("filter", filter)
		}
		if c.profile.CursorPaging {
			if cursor != "" {
				q.Set("cursor", cursor)
			}
		} else {
			q.Set("startIndex", strconv.Itoa(start))
		}
		var resp listResponse[T]
		if err := c.call(ctx, op, "GET", path, q, nil, &resp); err != nil {
			return err
		}
		for _, r := range resp.Resources {
			each(r)
		}
		n := len(resp.Resources)
		seen += n
		if c.profile.CursorPaging {
			if resp.NextCursor != "" {
				if resp.NextCursor == cursor {
					return fmt.Errorf("scim: GET %s: the target returned the same cursor twice", path)
				}
				cursor = resp.NextCursor
				continue
			}
			if page == 0 && n == strictPageCap {
				// No cursor on a full first page: the old form of Identity Center, which caps
				// listings at 50 and cannot page. What is missing cannot be told apart.
				return fmt.Errorf("scim: GET %s: %d results and no cursor: %w (a target without paging; read through the identitystore API instead)",
					path, n, ErrTruncated)
			}
			if resp.TotalResults != nil && *resp.TotalResults > seen {
				// More than a page and no cursor: a server that pages with startIndex, as RFC
				// 7644 has it, which this profile (Identity Center's cursors) cannot read.
				return fmt.Errorf("scim: GET %s: %d of %d results and no cursor: %w (the target pages with startIndex, not with Identity Center's cursors: %s)",
					path, seen, *resp.TotalResults, ErrTruncated, c.profileHint)
			}
			return nil
		}
		if resp.TotalResults == nil {
			if n == strictPageCap || n == size {
				return fmt.Errorf("scim: GET %s: %d results and no totalResults: %w", path, n, ErrTruncated)
			}
			return nil
		}
		if n == 0 || seen >= *resp.TotalResults {
			if seen < *resp.TotalResults {
				return fmt.Errorf("scim: GET %s: %d of %d results: %w", path, seen, *resp.TotalResults, ErrTruncated)
			}
			return nil
		}
		start += n
	}
}

// ReadState reads every user and group of the target, and the groups' members as the profile's
// Members says. Identity Center returns groups without members, so there memberships are read per
// user (GET /Groups?filter=members.value eq "<id>"), ReadConcurrency at a time under the limiter;
// a generic target's listing is trusted when it shows members. Members of each group are sorted.
func (c *Client) ReadState(ctx context.Context) (*scim.TargetState, error) {
	st := &scim.TargetState{}
	if err := list(ctx, c, "ListUsers", "/Users", "", func(u scimUser) { st.Users = append(st.Users, u.toTarget()) }); err != nil {
		return nil, fmt.Errorf("scim: read users: %w", err)
	}
	members := map[string][]string{}
	listed := 0 // members the group listing showed
	if err := list(ctx, c, "ListGroups", "/Groups", "", func(g scimGroup) {
		st.Groups = append(st.Groups, g.toTarget())
		for _, m := range g.Members {
			members[g.ID] = append(members[g.ID], m.Value)
			listed++
		}
	}); err != nil {
		return nil, fmt.Errorf("scim: read groups: %w", err)
	}
	how, err := c.memberRead(ctx, listed, len(st.Users), len(st.Groups))
	if err != nil {
		return nil, err
	}
	switch how {
	case MembersByFilter:
		if members, err = c.readMemberships(ctx, st.Users); err != nil {
			return nil, err
		}
	case MembersByGet:
		if members, err = c.readGroupsMembers(ctx, st.Groups); err != nil {
			return nil, err
		}
	}
	for i := range st.Groups {
		g := &st.Groups[i]
		g.Members = members[g.ID]
		slices.Sort(g.Members)
		g.Members = slices.Compact(g.Members)
	}
	slices.SortFunc(st.Users, func(a, b scim.TargetUser) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Groups, func(a, b scim.TargetGroup) int { return strings.Compare(a.ID, b.ID) })
	return st, nil
}

// memberRead decides how the members of a read are taken, for a listing of users and groups
// whose group listing showed listed members.
func (c *Client) memberRead(ctx context.Context, listed, users, groups int) (MemberRead, error) {
	how := c.profile.Members
	if how != MembersAuto {
		return how, nil
	}
	if listed > 0 || users == 0 || groups == 0 {
		return MembersInListings, nil
	}
	// Groups and users, and not one member listed: a server that leaves members out of its
	// listings must not look like one whose groups are all empty.
	set, err := c.settings(ctx)
	if err != nil {
		return 0, err
	}
	how = MembersByGet
	if set.filter {
		how = MembersByFilter
	}
	c.log.Info("the target's group listing shows no members; reading them apart", "groups", groups, "users", users,
		"by", map[MemberRead]string{MembersByFilter: "a filter per user", MembersByGet: "a GET per group"}[how])
	return how, nil
}

// readGroupsMembers reads each group with GET /Groups/{id} for its members, ReadConcurrency at a
// time; the first failure cancels the rest and is returned.
func (c *Client) readGroupsMembers(ctx context.Context, groups []scim.TargetGroup) (map[string][]string, error) {
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	return c.readEach(ctx, ids, func(ctx context.Context, gid string, add func(group, user string)) error {
		var g scimGroup
		if err := c.call(ctx, "GetGroup", "GET", "/Groups/"+url.PathEscape(gid), nil, nil, &g); err != nil {
			return fmt.Errorf("scim: read members of group %s: %w", gid, err)
		}
		for _, m := range g.Members {
			add(gid, m.Value)
		}
		return nil
	})
}

// readMemberships asks, for every user, which groups hold it; the first failure cancels the
// rest and is returned.
func (c *Client) readMemberships(ctx context.Context, users []scim.TargetUser) (map[string][]string, error) {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return c.readEach(ctx, ids, func(ctx context.Context, uid string, add func(group, user string)) error {
		return list(ctx, c, "ListGroups", "/Groups", filterEq("members.value", uid), func(g scimGroup) { add(g.ID, uid) })
	})
}

// readEach runs read for every id, ReadConcurrency at a time, and gathers the memberships it adds
// (group id to member user ids). The first failure cancels the rest and is returned.
func (c *Client) readEach(ctx context.Context, ids []string, read func(ctx context.Context, id string, add func(group, user string)) error) (map[string][]string, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu      sync.Mutex
		members = map[string][]string{}
		wg      sync.WaitGroup
		next    = make(chan string)
	)
	for range min(c.readC, max(1, len(ids))) {
		wg.Go(func() {
			for id := range next {
				var found [][2]string
				err := read(ctx, id, func(group, user string) { found = append(found, [2]string{group, user}) })
				if err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				for _, f := range found {
					members[f[0]] = append(members[f[0]], f[1])
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, id := range ids {
		select {
		case next <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return members, nil
}
