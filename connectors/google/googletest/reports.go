package googletest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	admin "google.golang.org/api/admin/directory/v1"
	reports "google.golang.org/api/admin/reports/v1"
)

// The admin audit events the fake records, as Google's Reports API documents them (application
// "admin", types GROUP_SETTINGS and USER_SETTINGS), and their parameters.
const (
	TypeGroupSettings = "GROUP_SETTINGS"
	TypeUserSettings  = "USER_SETTINGS"

	EventCreateGroup       = "CREATE_GROUP"
	EventDeleteGroup       = "DELETE_GROUP"
	EventChangeGroupName   = "CHANGE_GROUP_NAME"
	EventChangeGroupEmail  = "CHANGE_GROUP_EMAIL"
	EventAddGroupMember    = "ADD_GROUP_MEMBER"
	EventRemoveGroupMember = "REMOVE_GROUP_MEMBER"
	EventCreateUser        = "CREATE_USER"
	EventDeleteUser        = "DELETE_USER"
	EventRenameUser        = "RENAME_USER"
	EventSuspendUser       = "SUSPEND_USER"
	EventUnsuspendUser     = "UNSUSPEND_USER"

	ParamGroupEmail = "GROUP_EMAIL"
	ParamUserEmail  = "USER_EMAIL"
	ParamNewValue   = "NEW_VALUE"
)

// DefaultReportLag is how long after it happened an admin event becomes visible by default:
// Google documents admin log events as "near real time (a couple of minutes)".
const DefaultReportLag = 2 * time.Minute

// DefaultReportRetention is how long admin events are kept (Google: 6 months).
const DefaultReportRetention = 180 * 24 * time.Hour

// ActorEmail is the admin every recorded event names as its actor.
const ActorEmail = "admin@example.com"

// reportEvent is one recorded admin activity and when it becomes visible.
type reportEvent struct {
	act     *reports.Activity
	at      time.Time
	visible time.Time
}

// applications are the Reports API application names the fake accepts (the discovery
// document's enum, in part); only "admin" has events.
var applications = []string{"access_transparency", "admin", "calendar", "chat", "drive", "gcp", "gmail",
	"groups", "groups_enterprise", "login", "meet", "mobile", "rules", "saml", "token", "user_accounts"}

// SetClock replaces the fake's clock (event times, visibility, channel expirations).
func (s *Server) SetClock(now func() time.Time) { s.mu.Lock(); s.now = now; s.mu.Unlock() }

// SetReportLag sets how long after its time an admin event becomes visible in activities.list;
// default DefaultReportLag.
func (s *Server) SetReportLag(d time.Duration) { s.mu.Lock(); s.lag = d; s.mu.Unlock() }

// DelayNextEvents makes the next n recorded events visible extra later than the lag: late
// arrivals, whose time is earlier than that of events already visible.
func (s *Server) DelayNextEvents(n int, extra time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.delays = append(s.delays, extra)
	}
}

// AdminEvents returns every recorded admin activity, visible or not, oldest first.
func (s *Server) AdminEvents() []*reports.Activity {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*reports.Activity, len(s.events))
	for i, e := range s.events {
		out[i] = e.act
	}
	return out
}

// record adds an admin event happening now. The caller holds s.mu.
func (s *Server) record(typ, name string, params ...string) {
	now := s.now()
	s.qualifier++
	ps := make([]*reports.ActivityEventsParameters, 0, len(params)/2)
	for i := 0; i+1 < len(params); i += 2 {
		ps = append(ps, &reports.ActivityEventsParameters{Name: params[i], Value: params[i+1]})
	}
	act := &reports.Activity{
		Kind: "admin#reports#activity",
		Id: &reports.ActivityId{Time: now.UTC().Format(time.RFC3339Nano), UniqueQualifier: 1_000_000_000 + s.qualifier,
			ApplicationName: "admin", CustomerId: CustomerID},
		Etag:      fmt.Sprintf(`"act-%d"`, s.qualifier),
		Actor:     &reports.ActivityActor{CallerType: "USER", Email: ActorEmail, ProfileId: "100000000000000000000"},
		IpAddress: "192.0.2.1",
		Events:    []*reports.ActivityEvents{{Type: typ, Name: name, Parameters: ps}},
	}
	delay := s.lag
	if len(s.delays) > 0 {
		delay += s.delays[0]
		s.delays = s.delays[1:]
	}
	s.events = append(s.events, reportEvent{act: act, at: now, visible: now.Add(delay)})
}

// touchGroup gives g a new etag. The caller holds s.mu.
func (s *Server) touchGroup(g *admin.Group) {
	s.etags++
	g.Etag = fmt.Sprintf(`"grp-%d"`, s.etags)
}

func (s *Server) groupByID(id string) *admin.Group {
	for _, g := range s.groups {
		if g.Id == id {
			return g
		}
	}
	return nil
}

func (s *Server) userByID(id string) *admin.User {
	for _, u := range s.users {
		if u.Id == id {
			return u
		}
	}
	return nil
}

// CreateUser adds a user as an admin would, recording CREATE_USER.
func (s *Server) CreateUser(u *admin.User) {
	s.AddUser(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(TypeUserSettings, EventCreateUser, ParamUserEmail, u.PrimaryEmail)
	s.push("add", u)
}

// UpdateUser changes a user with edit and records the named USER_SETTINGS event (such as
// CHANGE_FIRST_NAME) for its primary email. It reports whether the user exists.
func (s *Server) UpdateUser(id, event string, edit func(*admin.User)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByID(id)
	if u == nil {
		return false
	}
	edit(u)
	s.record(TypeUserSettings, event, ParamUserEmail, u.PrimaryEmail)
	s.push("update", u)
	return true
}

// RenameUser changes a user's primary email, recording RENAME_USER (old email, NEW_VALUE).
func (s *Server) RenameUser(id, email string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByID(id)
	if u == nil {
		return false
	}
	old := u.PrimaryEmail
	u.PrimaryEmail = email
	for _, ms := range s.members {
		for _, m := range ms {
			if m.Id == id {
				m.Email = email
			}
		}
	}
	s.record(TypeUserSettings, EventRenameUser, ParamUserEmail, old, ParamNewValue, email)
	s.push("update", u)
	return true
}

// SuspendUser suspends or unsuspends a user, recording SUSPEND_USER or UNSUSPEND_USER.
func (s *Server) SuspendUser(id string, suspended bool) bool {
	ev := EventSuspendUser
	if !suspended {
		ev = EventUnsuspendUser
	}
	return s.UpdateUser(id, ev, func(u *admin.User) { u.Suspended = suspended })
}

// DeleteUser deletes a user and its memberships, recording DELETE_USER.
func (s *Server) DeleteUser(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByID(id)
	if u == nil {
		return false
	}
	s.users = slices.DeleteFunc(s.users, func(x *admin.User) bool { return x.Id == id })
	s.dropMember(id)
	s.record(TypeUserSettings, EventDeleteUser, ParamUserEmail, u.PrimaryEmail)
	s.push("delete", u)
	return true
}

// dropMember removes id from every group's members. The caller holds s.mu.
func (s *Server) dropMember(id string) {
	for gid, ms := range s.members {
		kept := slices.DeleteFunc(slices.Clone(ms), func(m *admin.Member) bool { return m.Id == id })
		if len(kept) != len(ms) {
			s.members[gid] = kept
			if g := s.groupByID(gid); g != nil {
				g.DirectMembersCount = int64(len(kept))
			}
		}
	}
}

// CreateGroup adds a group with its members as an admin would: CREATE_GROUP, then one
// ADD_GROUP_MEMBER per member.
func (s *Server) CreateGroup(g *admin.Group, members ...*admin.Member) {
	s.AddGroup(g, members...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touchGroup(g)
	s.record(TypeGroupSettings, EventCreateGroup, ParamGroupEmail, g.Email)
	for _, m := range members {
		s.record(TypeGroupSettings, EventAddGroupMember, ParamGroupEmail, g.Email, ParamUserEmail, m.Email)
	}
}

// RenameGroup changes a group's name, recording CHANGE_GROUP_NAME.
func (s *Server) RenameGroup(id, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupByID(id)
	if g == nil {
		return false
	}
	g.Name = name
	s.touchGroup(g)
	s.record(TypeGroupSettings, EventChangeGroupName, ParamGroupEmail, g.Email, ParamNewValue, name)
	return true
}

// ChangeGroupEmail changes a group's primary email, recording CHANGE_GROUP_EMAIL (old email,
// NEW_VALUE).
func (s *Server) ChangeGroupEmail(id, email string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupByID(id)
	if g == nil {
		return false
	}
	old := g.Email
	g.Email = email
	s.touchGroup(g)
	for _, ms := range s.members {
		for _, m := range ms {
			if m.Id == id {
				m.Email = email
			}
		}
	}
	s.record(TypeGroupSettings, EventChangeGroupEmail, ParamGroupEmail, old, ParamNewValue, email)
	return true
}

// DeleteGroup deletes a group (and its membership in other groups), recording DELETE_GROUP.
func (s *Server) DeleteGroup(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupByID(id)
	if g == nil {
		return false
	}
	s.groups = slices.DeleteFunc(s.groups, func(x *admin.Group) bool { return x.Id == id })
	delete(s.members, id)
	s.dropMember(id)
	s.record(TypeGroupSettings, EventDeleteGroup, ParamGroupEmail, g.Email)
	return true
}

// AddMember adds a direct member to a group, recording ADD_GROUP_MEMBER.
func (s *Server) AddMember(groupID string, m *admin.Member) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupByID(groupID)
	if g == nil {
		return false
	}
	m.Kind = "admin#directory#member"
	if m.Status == "" && m.Type != "GROUP" {
		m.Status = "ACTIVE"
	}
	if m.Role == "" {
		m.Role = "MEMBER"
	}
	s.members[groupID] = append(s.members[groupID], m)
	g.DirectMembersCount = int64(len(s.members[groupID]))
	s.record(TypeGroupSettings, EventAddGroupMember, ParamGroupEmail, g.Email, ParamUserEmail, m.Email)
	return true
}

// RemoveMember removes a direct member from a group, recording REMOVE_GROUP_MEMBER.
func (s *Server) RemoveMember(groupID, memberID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupByID(groupID)
	if g == nil {
		return false
	}
	i := slices.IndexFunc(s.members[groupID], func(m *admin.Member) bool { return m.Id == memberID })
	if i < 0 {
		return false
	}
	m := s.members[groupID][i]
	s.members[groupID] = slices.Delete(slices.Clone(s.members[groupID]), i, i+1)
	g.DirectMembersCount = int64(len(s.members[groupID]))
	s.record(TypeGroupSettings, EventRemoveGroupMember, ParamGroupEmail, g.Email, ParamUserEmail, m.Email)
	return true
}

// listActivities serves activities.list: the events visible now (or, for a later page, when
// the first page was served), newest first, within startTime..endTime, of the named event.
func (s *Server) listActivities(w http.ResponseWriter, r *http.Request, userKey, app string) {
	q := r.URL.Query()
	if !slices.Contains(applications, app) {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid value for applicationName: "+app)
		return
	}
	if c := q.Get("customerId"); c != "" && c != "my_customer" && c != CustomerID {
		writeError(w, http.StatusBadRequest, "badRequest", "Bad Request: unknown customer")
		return
	}
	s.mu.Lock()
	now, retention := s.now(), s.retention
	s.mu.Unlock()
	parse := func(name string) (time.Time, bool) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, true
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid value for "+name+": "+v)
			return time.Time{}, false
		}
		return t, true
	}
	start, ok := parse("startTime")
	if !ok {
		return
	}
	end, ok := parse("endTime")
	if !ok {
		return
	}
	switch {
	case !start.IsZero() && start.After(now):
		writeError(w, http.StatusBadRequest, "invalid", "Start time must be before the current time")
		return
	case !start.IsZero() && !end.IsZero() && start.After(end):
		writeError(w, http.StatusBadRequest, "invalid", "Start time must be before the end time")
		return
	}
	size := 1000
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid value for maxResults: "+v)
			return
		}
		size = n
	}
	asOf, offset := now, 0
	if t := q.Get("pageToken"); t != "" {
		var err error
		if asOf, offset, err = parseReportToken(t); err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid page token")
			return
		}
	}
	eventName := q.Get("eventName")
	s.mu.Lock()
	var match []reportEvent
	if app == "admin" {
		for _, e := range s.events {
			switch {
			case e.visible.After(asOf), e.at.Before(asOf.Add(-retention)):
			case !start.IsZero() && e.at.Before(start), !end.IsZero() && e.at.After(end):
			case userKey != "all" && !strings.EqualFold(userKey, e.act.Actor.Email):
			case eventName != "" && !slices.ContainsFunc(e.act.Events, func(ev *reports.ActivityEvents) bool { return ev.Name == eventName }):
			default:
				match = append(match, e)
			}
		}
	}
	s.mu.Unlock()
	sort.SliceStable(match, func(i, j int) bool {
		if !match[i].at.Equal(match[j].at) {
			return match[i].at.After(match[j].at)
		}
		return match[i].act.Id.UniqueQualifier > match[j].act.Id.UniqueQualifier
	})
	offset = min(offset, len(match))
	stop := min(offset+size, len(match))
	out := &reports.Activities{Kind: "admin#reports#activities", Etag: `"acts"`, Items: []*reports.Activity{}}
	for _, e := range match[offset:stop] {
		out.Items = append(out.Items, e.act)
	}
	if stop < len(match) {
		out.NextPageToken = reportToken(asOf, stop)
	}
	writeJSON(w, r, out)
}

func reportToken(asOf time.Time, offset int) string {
	return "r-" + strconv.FormatInt(asOf.UnixNano(), 10) + "-" + strconv.Itoa(offset)
}

func parseReportToken(t string) (time.Time, int, error) {
	parts := strings.Split(t, "-")
	if len(parts) != 3 || parts[0] != "r" {
		return time.Time{}, 0, fmt.Errorf("bad page token %q", t)
	}
	ns, err1 := strconv.ParseInt(parts[1], 10, 64)
	off, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || off < 1 {
		return time.Time{}, 0, fmt.Errorf("bad page token %q", t)
	}
	return time.Unix(0, ns), off, nil
}

// reportsRoute matches /admin/reports/v1/activity/users/{userKey}/applications/{app}.
func reportsRoute(p string) (userKey, app string, ok bool) {
	const prefix = "/admin/reports/v1/activity/users/"
	rest, found := strings.CutPrefix(p, prefix)
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] != "applications" || parts[0] == "" || parts[2] == "" {
		return "", "", false
	}
	userKey, err1 := url.PathUnescape(parts[0])
	app, err2 := url.PathUnescape(parts[2])
	return userKey, app, err1 == nil && err2 == nil
}
