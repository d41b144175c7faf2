package googletest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/googleapi"
)

// userMatches applies the supported subset of the Users.List query language: space-separated
// isSuspended=, isArchived=, orgUnitPath='...' (that unit and below), email:prefix* and
// email='address' (exact, primary or alias).
func userMatches(u *admin.User, query string) (bool, error) {
	for _, term := range strings.Fields(query) {
		switch {
		case strings.HasPrefix(term, "isSuspended="):
			if strings.TrimPrefix(term, "isSuspended=") != strconv.FormatBool(u.Suspended) {
				return false, nil
			}
		case strings.HasPrefix(term, "isArchived="):
			if strings.TrimPrefix(term, "isArchived=") != strconv.FormatBool(u.Archived) {
				return false, nil
			}
		case strings.HasPrefix(term, "orgUnitPath="):
			ou := strings.Trim(strings.TrimPrefix(term, "orgUnitPath="), "'")
			if u.OrgUnitPath != ou && !strings.HasPrefix(u.OrgUnitPath, strings.TrimSuffix(ou, "/")+"/") {
				return false, nil
			}
		case strings.HasPrefix(term, "email:") && strings.HasSuffix(term, "*"):
			if !strings.HasPrefix(u.PrimaryEmail, strings.TrimSuffix(strings.TrimPrefix(term, "email:"), "*")) {
				return false, nil
			}
		case strings.HasPrefix(term, "email="):
			addr := strings.Trim(strings.TrimPrefix(term, "email="), "'")
			if !strings.EqualFold(u.PrimaryEmail, addr) && !slices.ContainsFunc(u.Aliases, func(a string) bool { return strings.EqualFold(a, addr) }) {
				return false, nil
			}
		default:
			return false, fmt.Errorf("unsupported query term %q", term)
		}
	}
	return true, nil
}

func inDomain(email, domain string) bool {
	return domain == "" || strings.HasSuffix(strings.ToLower(email), "@"+strings.ToLower(domain))
}

// visibleUser returns the user as a list or get shows it for the projection asked.
func visibleUser(u *admin.User, r *http.Request) (*admin.User, error) {
	q := r.URL.Query()
	c := *u
	switch p := q.Get("projection"); p {
	case "", "basic":
		c.CustomSchemas = nil
	case "full":
	case "custom":
		mask := q.Get("customFieldMask")
		if mask == "" {
			return nil, fmt.Errorf("customFieldMask is required with projection custom")
		}
		keep := strings.Split(mask, ",")
		c.CustomSchemas = map[string]googleapi.RawMessage{}
		for name, v := range u.CustomSchemas {
			if slices.Contains(keep, name) {
				c.CustomSchemas[name] = v
			}
		}
	default:
		return nil, fmt.Errorf("invalid projection %q", p)
	}
	return &c, nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	domain, ok := customerOK(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("event") != "" {
		writeError(w, http.StatusBadRequest, "invalid", "event is only for watch")
		return
	}
	query := r.URL.Query().Get("query")
	s.mu.Lock()
	var match []*admin.User
	var qerr error
	for _, u := range s.users {
		ok, err := userMatches(u, query)
		if err != nil {
			qerr = err
			break
		}
		if ok && inDomain(u.PrimaryEmail, domain) {
			c := *u // a copy: the admin methods may change u while it is encoded
			match = append(match, &c)
		}
	}
	s.mu.Unlock()
	if qerr != nil {
		writeError(w, http.StatusBadRequest, "invalidInput", "Invalid Input: "+qerr.Error())
		return
	}
	items, next, ok := page(w, r, match, 100, 500)
	if !ok {
		return
	}
	out := &admin.Users{Kind: "admin#directory#users", NextPageToken: next, Users: []*admin.User{}}
	for _, u := range items {
		v, err := visibleUser(u, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", err.Error())
			return
		}
		out.Users = append(out.Users, v)
	}
	writeJSON(w, r, out)
}

// findUser finds a user by id, primary email or alias.
func (s *Server) findUser(key string) *admin.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Id == key || strings.EqualFold(u.PrimaryEmail, key) || slices.ContainsFunc(u.Aliases, func(a string) bool { return strings.EqualFold(a, key) }) {
			c := *u
			return &c
		}
	}
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, key string) {
	u := s.findUser(key)
	if u == nil {
		writeError(w, http.StatusNotFound, "notFound", "Resource Not Found: userKey")
		return
	}
	v, err := visibleUser(u, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	writeJSON(w, r, v)
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	domain, ok := customerOK(w, r)
	if !ok {
		return
	}
	q := r.URL.Query().Get("query")
	prefix := ""
	if q != "" {
		if !strings.HasPrefix(q, "email:") || !strings.HasSuffix(q, "*") || strings.Contains(q, " ") {
			writeError(w, http.StatusBadRequest, "invalidInput", "Invalid Input: unsupported query")
			return
		}
		prefix = strings.TrimSuffix(strings.TrimPrefix(q, "email:"), "*")
	}
	s.mu.Lock()
	var match []*admin.Group
	for _, g := range s.groups {
		if strings.HasPrefix(g.Email, prefix) && inDomain(g.Email, domain) {
			c := *g
			match = append(match, &c)
		}
	}
	s.mu.Unlock()
	items, next, ok := page(w, r, match, 200, 200)
	if !ok {
		return
	}
	writeJSON(w, r, &admin.Groups{Kind: "admin#directory#groups", NextPageToken: next, Groups: append([]*admin.Group{}, items...)})
}

// getGroup serves groups.get by id, email or alias.
func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, key string) {
	s.mu.Lock()
	var found *admin.Group
	for _, g := range s.groups {
		if g.Id == key || strings.EqualFold(g.Email, key) || slices.ContainsFunc(g.Aliases, func(a string) bool { return strings.EqualFold(a, key) }) {
			c := *g
			found = &c
		}
	}
	s.mu.Unlock()
	if found == nil {
		writeError(w, http.StatusNotFound, "notFound", "Resource Not Found: groupKey")
		return
	}
	writeJSON(w, r, found)
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, key string) {
	s.mu.Lock()
	id := key
	for _, g := range s.groups {
		if strings.EqualFold(g.Email, key) || slices.Contains(g.Aliases, key) {
			id = g.Id
		}
	}
	direct, ok := s.members[id]
	var list []*admin.Member
	if ok && r.URL.Query().Get("includeDerivedMembership") == "true" {
		// Direct members first, then every indirect member, each once; cycles end the walk.
		seen := map[string]bool{}
		visited := map[string]bool{id: true}
		var walk func(ms []*admin.Member)
		walk = func(ms []*admin.Member) {
			for _, m := range ms {
				if !seen[m.Id] {
					seen[m.Id] = true
					list = append(list, m)
				}
			}
			for _, m := range ms {
				if m.Type == "GROUP" && !visited[m.Id] {
					visited[m.Id] = true
					walk(s.members[m.Id])
				}
			}
		}
		walk(direct)
	} else {
		list = slices.Clone(direct)
	}
	for i, m := range list {
		c := *m
		list[i] = &c
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "Resource Not Found: groupKey")
		return
	}
	items, next, ok := page(w, r, list, 200, 200)
	if !ok {
		return
	}
	writeJSON(w, r, &admin.Members{Kind: "admin#directory#members", NextPageToken: next, Members: append([]*admin.Member{}, items...)})
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request, body []byte) {
	if _, ok := customerOK(w, r); !ok {
		return
	}
	var c admin.Channel
	if err := json.Unmarshal(body, &c); err != nil || c.Id == "" || c.Type != "web_hook" || !strings.HasPrefix(c.Address, "https://") {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid channel")
		return
	}
	ev := r.URL.Query().Get("event")
	if !slices.Contains([]string{"add", "delete", "makeAdmin", "undelete", "update"}, ev) {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid event")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.channels[c.Id]; dup {
		writeError(w, http.StatusBadRequest, "channelIdNotUnique", "Channel id not unique")
		return
	}
	limit := s.now().Add(s.maxTTL).UnixMilli()
	if c.Expiration == 0 || c.Expiration > limit {
		c.Expiration = limit
	}
	c.Kind = "api#channel"
	c.ResourceId = "res-" + c.Id
	c.ResourceUri = s.URL + "/admin/directory/v1/users?event=" + ev + "&alt=json"
	c.Params = map[string]string{"event": ev}
	s.channels[c.Id] = &c
	out := c
	out.Token = "" // Google does not echo the token
	writeJSON(w, r, &out)
}

func (s *Server) stop(w http.ResponseWriter, body []byte) {
	var c admin.Channel
	if err := json.Unmarshal(body, &c); err != nil || c.Id == "" {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid channel")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	open, ok := s.channels[c.Id]
	if !ok || open.ResourceId != c.ResourceId {
		writeError(w, http.StatusNotFound, "notFound", "Channel not found")
		return
	}
	delete(s.channels, c.Id)
	w.WriteHeader(http.StatusNoContent)
}

// Notify builds the callback Google would send on the channel for an event about the user:
// the headers and body to hand to a webhook handler.
func (s *Server) Notify(channelID, state string, u *admin.User, msg int64) (http.Header, []byte, error) {
	s.mu.Lock()
	c, ok := s.channels[channelID]
	s.mu.Unlock()
	if !ok {
		return nil, nil, fmt.Errorf("googletest: no channel %q", channelID)
	}
	h, b := notification(c, state, u, msg)
	return h, b, nil
}

// notification builds the headers and body of a callback on channel c.
func notification(c *admin.Channel, state string, u *admin.User, msg int64) (http.Header, []byte) {
	h := http.Header{}
	h.Set("X-Goog-Channel-ID", c.Id)
	h.Set("X-Goog-Channel-Token", c.Token)
	h.Set("X-Goog-Channel-Expiration", time.UnixMilli(c.Expiration).UTC().Format(http.TimeFormat))
	h.Set("X-Goog-Resource-ID", c.ResourceId)
	h.Set("X-Goog-Resource-URI", c.ResourceUri)
	h.Set("X-Goog-Resource-State", state)
	h.Set("X-Goog-Message-Number", strconv.FormatInt(msg, 10))
	if state == "sync" || u == nil {
		return h, nil
	}
	b, _ := json.Marshal(map[string]string{"kind": "admin#directory#user", "id": u.Id, "etag": `"e"`, "primaryEmail": u.PrimaryEmail})
	return h, b
}
