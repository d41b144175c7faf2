package client_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeSCIM is a small in-memory SCIM target for unit tests: it stores user bodies as posted,
// pages with cursors (or not, when strict), answers groups without members (as Identity Center
// does) and membership per member. Hooks let tests inject failures.
type fakeSCIM struct {
	t      *testing.T
	token  string
	strict bool // old Identity Center: at most 50 results, no paging

	mu       sync.Mutex
	users    map[string]map[string]any
	groups   map[string]map[string]any
	members  map[string]map[string]bool // group id -> user ids
	nextID   int
	requests []*http.Request
	bodies   []string
	// before, when set, may answer a request itself (return true) before the fake does.
	before func(w http.ResponseWriter, r *http.Request, n int) bool
}

func newFake(t *testing.T) (*fakeSCIM, *httptest.Server) {
	f := &fakeSCIM{t: t, token: "s3cr3t-token", users: map[string]map[string]any{}, groups: map[string]map[string]any{},
		members: map[string]map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeSCIM) count(method, path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r.Method == method && r.URL.Path == path {
			n++
		}
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func awsError(w http.ResponseWriter, status int, detail string) {
	s := []string{"urn:ietf:params:scim:api:messages:2.0:Error"}
	writeJSON(w, status, map[string]any{"schema": s, "schemas": s, "detail": detail, "status": strconv.Itoa(status),
		"exceptionRequestId": "req-123", "timeStamp": "2026-01-01 00:00:00.0"})
}

var eqFilter = regexp.MustCompile(`^(\w+(?:\.\w+)?) eq "((?:[^"\\]|\\.)*)"$`)

func (f *fakeSCIM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.bodies = append(f.bodies, string(body))
	n := len(f.requests)
	before := f.before
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		awsError(w, 401, "unauthorized")
		return
	}
	if before != nil && before(w, r, n) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/scim/v2/"), "/")
	var store map[string]map[string]any
	switch parts[0] {
	case "Users":
		store = f.users
	case "Groups":
		store = f.groups
	default:
		awsError(w, 404, "no such endpoint")
		return
	}
	switch {
	case r.Method == "GET" && len(parts) == 1:
		f.list(w, r, parts[0], store)
	case r.Method == "POST" && len(parts) == 1:
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			awsError(w, 400, "bad json")
			return
		}
		key := "userName"
		if parts[0] == "Groups" {
			key = "displayName"
		}
		for _, o := range store {
			if o[key] == obj[key] {
				awsError(w, 409, "Refused to create a new, duplicate resource.")
				return
			}
		}
		f.nextID++
		id := fmt.Sprintf("%s-%04d", strings.ToLower(parts[0][:1]), f.nextID)
		obj["id"] = id
		if ms, ok := obj["members"].([]any); ok {
			f.members[id] = map[string]bool{}
			for _, m := range ms {
				f.members[id][m.(map[string]any)["value"].(string)] = true
			}
			delete(obj, "members")
		}
		store[id] = obj
		writeJSON(w, 201, obj)
	case len(parts) == 2:
		obj, ok := store[parts[1]]
		if !ok {
			awsError(w, 404, "not found")
			return
		}
		switch r.Method {
		case "GET":
			writeJSON(w, 200, obj)
		case "DELETE":
			delete(store, parts[1])
			w.WriteHeader(204)
		case "PUT":
			var nobj map[string]any
			_ = json.Unmarshal(body, &nobj)
			nobj["id"] = parts[1]
			store[parts[1]] = nobj
			writeJSON(w, 200, nobj)
		case "PATCH":
			var p struct {
				Operations []struct {
					Op, Path string
					Value    json.RawMessage
				}
			}
			_ = json.Unmarshal(body, &p)
			for _, op := range p.Operations {
				switch {
				case op.Path == "members":
					var vs []struct{ Value string }
					_ = json.Unmarshal(op.Value, &vs)
					if f.members[parts[1]] == nil {
						f.members[parts[1]] = map[string]bool{}
					}
					for _, v := range vs {
						if op.Op == "add" {
							f.members[parts[1]][v.Value] = true
						} else {
							delete(f.members[parts[1]], v.Value)
						}
					}
				default:
					var v any
					_ = json.Unmarshal(op.Value, &v)
					obj[op.Path] = v
				}
			}
			w.WriteHeader(204)
		}
	default:
		awsError(w, 405, "method not allowed")
	}
}

func (f *fakeSCIM) list(w http.ResponseWriter, r *http.Request, kind string, store map[string]map[string]any) {
	var ids []string
	if flt := r.URL.Query().Get("filter"); flt != "" {
		m := eqFilter.FindStringSubmatch(flt)
		if m == nil {
			awsError(w, 400, "unsupported filter")
			return
		}
		var value string
		if err := json.Unmarshal([]byte(`"`+m[2]+`"`), &value); err != nil {
			awsError(w, 400, "bad string literal")
			return
		}
		for id, o := range store {
			if m[1] == "members.value" && f.members[id][value] || o[m[1]] == value {
				ids = append(ids, id)
			}
		}
	} else {
		for id := range store {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	size := 100
	if c := r.URL.Query().Get("count"); c != "" {
		size, _ = strconv.Atoi(c)
	}
	start := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		start, _ = strconv.Atoi(c)
	}
	resp := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"}}
	if f.strict {
		size, start = 50, 0
	}
	end := min(start+size, len(ids))
	res := []any{}
	for _, id := range ids[start:end] {
		res = append(res, store[id]) // groups: members never returned, as Identity Center does
	}
	resp["Resources"] = res
	resp["itemsPerPage"] = len(res)
	if !f.strict && end < len(ids) {
		resp["nextCursor"] = strconv.Itoa(end)
	}
	writeJSON(w, 200, resp)
}
