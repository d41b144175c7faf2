// Package googletest is an httptest fake of the parts of the Google Admin SDK Directory API
// that scimbridge uses: users (list, get, watch), groups (list, get), members (list, with
// includeDerivedMembership), channels (stop), with Google's paging, partial responses
// (fields), page-by-page error injection, latency, and a record of every request. It also
// fakes the OAuth token endpoint and the IAM Credentials signJwt call (see TokenServer).
//
// It also serves the Reports API's activities.list for application "admin": every change made
// through its admin methods (CreateUser, RenameUser, DeleteUser, CreateGroup, RenameGroup,
// AddMember, RemoveMember, ...) records the admin audit event Google documents (CREATE_GROUP,
// ADD_GROUP_MEMBER with GROUP_EMAIL and USER_EMAIL, RENAME_USER, ...), visible only after the
// reporting lag (SetReportLag; DelayNextEvents makes events arrive late). The Add* and
// SetMembers methods load data without events, as history before the log. With DeliverPushes,
// the user methods also POST Users.Watch notifications to the open channels.
//
// Point the real client at it:
//
//	admin.NewService(ctx, option.WithEndpoint(fake.URL+"/"), option.WithoutAuthentication())
package googletest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	admin "google.golang.org/api/admin/directory/v1"
)

// CustomerID is the customer id of the fake's users; "my_customer" means the same.
const CustomerID = "C0fake01"

// Request is one request the fake received.
type Request struct {
	Method string
	// Path is the escaped URL path, such as /admin/directory/v1/groups/g1/members.
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Server is the fake Directory API. Set Latency and the data before sending requests; the
// methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, without a trailing slash.
	URL string
	srv *httptest.Server

	mu sync.Mutex
	// Latency delays every answer (requests are served concurrently).
	latency  time.Duration
	users    []*admin.User
	groups   []*admin.Group
	members  map[string][]*admin.Member // by group id
	channels map[string]*admin.Channel
	failures map[string][]*failure
	requests []Request
	// maxTTL caps watch channel lifetimes.
	maxTTL time.Duration
	// bearer, when set, is the only Authorization accepted.
	bearer string
	now    func() time.Time

	// The admin audit log (reports.go).
	events    []reportEvent
	lag       time.Duration
	delays    []time.Duration
	retention time.Duration
	qualifier int64
	etags     int64
	pusher    *pusher
}

type failure struct {
	page, times, status int
	reason              string
}

// New starts a fake with no data. Close it when done.
func New() *Server {
	s := &Server{
		members:   map[string][]*admin.Member{},
		channels:  map[string]*admin.Channel{},
		failures:  map[string][]*failure{},
		maxTTL:    6 * time.Hour,
		now:       time.Now,
		lag:       DefaultReportLag,
		retention: DefaultReportRetention,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) { s.mu.Lock(); s.latency = d; s.mu.Unlock() }

// SetMaxChannelTTL caps the lifetime granted to watch channels.
func (s *Server) SetMaxChannelTTL(d time.Duration) { s.mu.Lock(); s.maxTTL = d; s.mu.Unlock() }

// RequireBearer makes every Directory request without "Authorization: Bearer token" a 401.
func (s *Server) RequireBearer(token string) { s.mu.Lock(); s.bearer = token; s.mu.Unlock() }

// AddUser adds users in list order. Id, PrimaryEmail and CustomerId are required/defaulted.
func (s *Server) AddUser(users ...*admin.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range users {
		if u.CustomerId == "" {
			u.CustomerId = CustomerID
		}
		u.Kind = "admin#directory#user"
		s.users = append(s.users, u)
	}
}

// AddGroup adds a group with its direct members (type USER, GROUP or CUSTOMER; Id required).
func (s *Server) AddGroup(g *admin.Group, members ...*admin.Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.Kind = "admin#directory#group"
	g.DirectMembersCount = int64(len(members))
	s.groups = append(s.groups, g)
	for _, m := range members {
		m.Kind = "admin#directory#member"
		if m.Status == "" && m.Type != "GROUP" {
			m.Status = "ACTIVE"
		}
		if m.Role == "" {
			m.Role = "MEMBER"
		}
	}
	s.members[g.Id] = members
}

// SetMembers replaces the direct members of a group that is not listed (a nested group
// outside the selection, for example); AddGroup both lists and sets.
func (s *Server) SetMembers(groupID string, members ...*admin.Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range members {
		m.Kind = "admin#directory#member"
		if m.Role == "" {
			m.Role = "MEMBER"
		}
	}
	s.members[groupID] = members
}

// FailPage makes the next times requests for the given page (1-based; list pages are counted
// by page token, other calls are page 1) of the escaped path answer status with a Google error
// of the given reason ("backendError", "userRateLimitExceeded", "quotaExceeded", ...).
func (s *Server) FailPage(path string, page, times, status int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[path] = append(s.failures[path], &failure{page: page, times: times, status: status, reason: reason})
}

// Requests returns every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() { s.mu.Lock(); s.requests = nil; s.mu.Unlock() }

// Channels returns the open watch channels (with their tokens and events in Params["event"]).
func (s *Server) Channels() []admin.Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]admin.Channel, 0, len(s.channels))
	for _, c := range s.channels {
		out = append(out, *c)
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	latency, bearer := s.latency, s.bearer
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}
	if bearer != "" && r.Header.Get("Authorization") != "Bearer "+bearer {
		writeError(w, http.StatusUnauthorized, "authError", "Invalid Credentials")
		return
	}
	if err := s.inject(r); err != nil {
		writeError(w, err.status, err.reason, "injected failure")
		return
	}
	const base = "/admin/directory/v1/"
	p := r.URL.EscapedPath()
	if userKey, app, ok := reportsRoute(p); ok && r.Method == http.MethodGet {
		s.listActivities(w, r, userKey, app)
		return
	}
	switch {
	case r.Method == http.MethodGet && p == base+"users":
		s.listUsers(w, r)
	case r.Method == http.MethodPost && p == base+"users/watch":
		s.watch(w, r, body)
	case r.Method == http.MethodGet && strings.HasPrefix(p, base+"users/") && !strings.Contains(p[len(base+"users/"):], "/"):
		key, _ := url.PathUnescape(p[len(base+"users/"):])
		s.getUser(w, r, key)
	case r.Method == http.MethodGet && p == base+"groups":
		s.listGroups(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(p, base+"groups/") && !strings.Contains(p[len(base+"groups/"):], "/"):
		key, _ := url.PathUnescape(p[len(base+"groups/"):])
		s.getGroup(w, r, key)
	case r.Method == http.MethodGet && strings.HasPrefix(p, base+"groups/") && strings.HasSuffix(p, "/members"):
		key, _ := url.PathUnescape(strings.TrimSuffix(p[len(base+"groups/"):], "/members"))
		s.listMembers(w, r, key)
	case r.Method == http.MethodPost && p == "/admin/directory_v1/channels/stop":
		s.stop(w, body)
	default:
		writeError(w, http.StatusNotFound, "notFound", "no such method: "+r.Method+" "+p)
	}
}

// inject returns the configured failure for this request, consuming one of its times.
func (s *Server) inject(r *http.Request) *failure {
	page := 1
	if t := r.URL.Query().Get("pageToken"); t != "" {
		page, _ = pageOf(t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.failures[r.URL.EscapedPath()] {
		if f.page == page && f.times > 0 {
			f.times--
			return f
		}
	}
	return nil
}

func pageToken(page int) string { return "page-" + strconv.Itoa(page) }

func pageOf(token string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(token, "page-"))
	if err != nil || !strings.HasPrefix(token, "page-") || n < 2 {
		return 0, fmt.Errorf("bad page token %q", token)
	}
	return n, nil
}

// page cuts items to the requested page; it writes a 400 and returns ok=false on bad input.
func page[T any](w http.ResponseWriter, r *http.Request, items []T, def, max int) (out []T, next string, ok bool) {
	q := r.URL.Query()
	size := def
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid value for maxResults: "+v)
			return nil, "", false
		}
		size = n
	}
	p := 1
	if t := q.Get("pageToken"); t != "" {
		var err error
		if p, err = pageOf(t); err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid page token")
			return nil, "", false
		}
	}
	start := (p - 1) * size
	if start > len(items) {
		start = len(items)
	}
	end := min(start+size, len(items))
	if end < len(items) {
		next = pageToken(p + 1)
	}
	return items[start:end], next, true
}

// customerOK checks the customer/domain parameters; it writes a 400 when neither is valid.
func customerOK(w http.ResponseWriter, r *http.Request) (domain string, ok bool) {
	q := r.URL.Query()
	switch c := q.Get("customer"); {
	case q.Get("domain") != "":
		return q.Get("domain"), true
	case c == "my_customer" || c == CustomerID:
		return "", true
	case c == "":
		writeError(w, http.StatusBadRequest, "badRequest", "Bad Request: customer or domain required")
	default:
		writeError(w, http.StatusBadRequest, "badRequest", "Bad Request: unknown customer")
	}
	return "", false
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internalError", err.Error())
		return
	}
	if f := r.URL.Query().Get("fields"); f != "" {
		var generic any
		_ = json.Unmarshal(b, &generic)
		sel, err := parseFields(f)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalidParameter", "Invalid field selection "+f)
			return
		}
		b, _ = json.Marshal(sel.apply(generic))
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

// writeError writes an error in Google's JSON shape.
func writeError(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": status, "message": msg, "status": http.StatusText(status),
		"errors": []map[string]any{{"message": msg, "domain": "global", "reason": reason}},
	}})
}
