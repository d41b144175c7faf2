package google

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/connectors/google/googletest"
)

// discovery is the part of a Google API discovery document the check needs.
type discovery struct {
	ServicePath string                    `json:"servicePath"`
	Parameters  map[string]discoveryParam `json:"parameters"`
	Resources   map[string]struct {
		Methods map[string]discoveryMethod `json:"methods"`
	} `json:"resources"`
	Schemas map[string]discoverySchema `json:"schemas"`
}

type discoveryMethod struct {
	ID         string                    `json:"id"`
	Path       string                    `json:"path"`
	HTTPMethod string                    `json:"httpMethod"`
	Parameters map[string]discoveryParam `json:"parameters"`
	Scopes     []string                  `json:"scopes"`
	Request    *struct {
		Ref string `json:"$ref"`
	} `json:"request"`
	Response *struct {
		Ref string `json:"$ref"`
	} `json:"response"`
}

type discoveryParam struct {
	Type     string   `json:"type"`
	Location string   `json:"location"`
	Required bool     `json:"required"`
	Enum     []string `json:"enum"`
	Minimum  string   `json:"minimum"`
	Maximum  string   `json:"maximum"`
	Pattern  string   `json:"pattern"`
}

type discoverySchema struct {
	Ref        string                     `json:"$ref"`
	Type       string                     `json:"type"`
	Properties map[string]discoverySchema `json:"properties"`
	Items      *discoverySchema           `json:"items"`
}

// loadDiscovery reads the Directory API's admin-api.json from the google.golang.org/api
// module this build uses.
func loadDiscovery(t *testing.T) *discovery {
	t.Helper()
	return loadDiscoveryOf(t, "directory")
}

// loadDiscoveryOf reads admin/<api>/v1/admin-api.json (directory or reports) from the module.
func loadDiscoveryOf(t *testing.T, api string) *discovery {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "google.golang.org/api").Output()
	if err != nil {
		t.Fatalf("go list google.golang.org/api: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "admin", api, "v1", "admin-api.json"))
	if err != nil {
		t.Fatalf("read discovery document: %v", err)
	}
	var d discovery
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("decode discovery document: %v", err)
	}
	return &d
}

// TestRequestsMatchDiscovery drives every call the connector makes (reads in both nesting
// modes, custom schemas, domain scope, paging, retries, ReadUser, Watch, renewal, Close) and
// checks each request against the discovery document: path, HTTP method, parameter names,
// types and enums, required parameters, field masks against the response schema, request
// body fields, and that the method accepts one of the scopes the connector asks for.
func TestRequestsMatchDiscovery(t *testing.T) {
	d := loadDiscovery(t)
	e := newEnv(t)
	seedSmall(e.fake)
	seedLarge(e.fake, 700, 210, 1, 230)
	e.fake.FailPage("/admin/directory/v1/users", 2, 1, 503, "backendError")
	ctx := context.Background()

	runs := []func(*Config){
		func(c *Config) { c.CustomSchemas = []string{"Employment", "Other"}; c.UserQuery = "isSuspended=false" },
		func(c *Config) { c.NestedGroups = Derived; c.Domain = "example.com"; c.GroupQuery = "email:eng*" },
	}
	for _, edit := range runs {
		s := e.open(t, edit)
		if _, err := s.Read(ctx); err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	s := e.open(t, func(c *Config) {
		c.CustomSchemas = []string{"Employment"}
		c.Watch = WatchConfig{Address: "https://hooks.example.com/google", Events: []string{"add", "makeAdmin"}}
	})
	if _, err := s.ReadUser(ctx, "alice.a@example.com"); err != nil {
		t.Fatalf("ReadUser: %v", err)
	}
	if err := s.Watch(ctx); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	seen := map[string]int{}
	for _, r := range e.fake.Requests() {
		id := checkRequest(t, d, r)
		seen[id]++
	}
	for _, id := range []string{"directory.users.list", "directory.users.get", "directory.users.watch",
		"directory.groups.list", "directory.members.list", "admin.channels.stop"} {
		if seen[id] == 0 {
			t.Errorf("no request exercised %s (seen %v)", id, seen)
		}
	}
	t.Logf("requests checked per method: %v", seen)
}

// checkRequest finds the discovery method of r and checks r against it; it returns the id.
func checkRequest(t reporter, d *discovery, r googletest.Request) string {
	t.Helper()
	var m *discoveryMethod
	var pathParams map[string]string
	for _, res := range d.Resources {
		for _, cand := range res.Methods {
			if cand.HTTPMethod != r.Method {
				continue
			}
			if vals, ok := matchPath("/"+d.ServicePath+cand.Path, r.Path); ok {
				c := cand
				m, pathParams = &c, vals
			}
		}
	}
	if m == nil {
		t.Errorf("%s %s matches no method of the discovery document", r.Method, r.Path)
		return "unknown"
	}
	for name, p := range m.Parameters {
		if p.Location == "path" {
			if pathParams[name] == "" {
				t.Errorf("%s: path parameter %s is empty", m.ID, name)
			} else if err := checkValue(p, pathParams[name]); err != "" {
				t.Errorf("%s: path parameter %s=%q: %s", m.ID, name, pathParams[name], err)
			}
			continue
		}
		if p.Required && !r.Query.Has(name) {
			t.Errorf("%s: required parameter %s missing", m.ID, name)
		}
	}
	for name, vals := range r.Query {
		p, ok := m.Parameters[name]
		if !ok {
			p, ok = d.Parameters[name]
		}
		if !ok || p.Location != "query" {
			t.Errorf("%s: unknown query parameter %q", m.ID, name)
			continue
		}
		for _, v := range vals {
			if err := checkValue(p, v); err != "" {
				t.Errorf("%s: parameter %s=%q: %s", m.ID, name, v, err)
			}
		}
	}
	if f := r.Query.Get("fields"); f != "" && m.Response != nil {
		checkFields(t, d, m.ID, f, d.Schemas[m.Response.Ref])
	}
	if m.Request != nil {
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Errorf("%s: body is not a JSON object: %v", m.ID, err)
		}
		for k := range body {
			if _, ok := d.Schemas[m.Request.Ref].Properties[k]; !ok {
				t.Errorf("%s: body field %q is not in schema %s", m.ID, k, m.Request.Ref)
			}
		}
	} else if len(r.Body) > 0 {
		t.Errorf("%s: sent a body to a method that takes none", m.ID)
	}
	if !slices.ContainsFunc(m.Scopes, func(s string) bool { return slices.Contains(FeedScopes, s) }) {
		t.Errorf("%s: accepts scopes %v, none of which the connector asks for (%v)", m.ID, m.Scopes, FeedScopes)
	}
	return m.ID
}

var templateVar = regexp.MustCompile(`\{\+?[^}]+\}`)

// matchPath matches an escaped request path to a discovery path template.
func matchPath(template, path string) (map[string]string, bool) {
	var names []string
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, loc := range templateVar.FindAllStringIndex(template, -1) {
		b.WriteString(regexp.QuoteMeta(template[last:loc[0]]))
		v := template[loc[0]:loc[1]]
		names = append(names, strings.Trim(v, "{}+"))
		if strings.HasPrefix(v, "{+") {
			b.WriteString("(.+)")
		} else {
			b.WriteString("([^/]+)")
		}
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(template[last:]) + "$")
	m := regexp.MustCompile(b.String()).FindStringSubmatch(path)
	if m == nil {
		return nil, false
	}
	vals := map[string]string{}
	for i, n := range names {
		vals[n] = m[i+1]
	}
	return vals, true
}

func checkValue(p discoveryParam, v string) string {
	switch p.Type {
	case "integer":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "not an integer"
		}
		if p.Minimum != "" {
			if lo, _ := strconv.ParseInt(p.Minimum, 10, 64); n < lo {
				return "below the minimum " + p.Minimum
			}
		}
		if p.Maximum != "" {
			if hi, _ := strconv.ParseInt(p.Maximum, 10, 64); n > hi {
				return "above the maximum " + p.Maximum
			}
		}
	case "boolean":
		if v != "true" && v != "false" {
			return "not a boolean"
		}
	case "string":
	default:
		return "unexpected type " + p.Type
	}
	if len(p.Enum) > 0 && !slices.Contains(p.Enum, v) {
		return "not one of " + strings.Join(p.Enum, ", ")
	}
	if p.Pattern != "" && !regexp.MustCompile("^(?:"+p.Pattern+")$").MatchString(v) {
		return "does not match the pattern " + p.Pattern
	}
	return ""
}

// checkFields checks a field mask ("a,b(c,d)") against a schema.
func checkFields(t reporter, d *discovery, id, mask string, schema discoverySchema) {
	t.Helper()
	resolve := func(s discoverySchema) discoverySchema {
		for s.Ref != "" {
			s = d.Schemas[s.Ref]
		}
		if s.Type == "array" && s.Items != nil {
			s = *s.Items
			for s.Ref != "" {
				s = d.Schemas[s.Ref]
			}
		}
		return s
	}
	var walk func(mask string, s discoverySchema) string
	walk = func(mask string, s discoverySchema) string {
		s = resolve(s)
		for mask != "" {
			i := strings.IndexAny(mask, ",()")
			name := mask
			if i >= 0 {
				name = mask[:i]
			}
			prop, ok := s.Properties[name]
			if !ok {
				t.Errorf("%s: fields names %q, not a field of the response", id, name)
			}
			if i < 0 {
				return ""
			}
			switch mask[i] {
			case '(':
				mask = walk(mask[i+1:], prop)
				if !strings.HasPrefix(mask, ")") {
					t.Errorf("%s: unbalanced fields mask", id)
					return ""
				}
				mask = strings.TrimPrefix(mask[1:], ",")
			case ')':
				return mask[i:]
			default:
				mask = mask[i+1:]
			}
			if strings.HasPrefix(mask, ")") {
				return mask
			}
		}
		return ""
	}
	if rest := walk(mask, schema); rest != "" {
		t.Errorf("%s: fields mask %q has a stray %q", id, mask, rest)
	}
}

// reporter is the part of testing.T the checks use, so a test can see them fail.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

type recorder struct{ msgs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// TestDiscoveryCheckCatchesMistakes shows the check is not vacuous.
func TestDiscoveryCheckCatchesMistakes(t *testing.T) {
	d := loadDiscovery(t)
	q := func(s string) url.Values { v, _ := url.ParseQuery(s); return v }
	tests := []struct {
		name string
		req  googletest.Request
		want string
	}{
		{"unknown path", googletest.Request{Method: "GET", Path: "/admin/directory/v1/people"}, "matches no method"},
		{"wrong method", googletest.Request{Method: "DELETE", Path: "/admin/directory/v1/users"}, "matches no method"},
		{"unknown parameter", googletest.Request{Method: "GET", Path: "/admin/directory/v1/users", Query: q("customer=my_customer&limit=5")}, `unknown query parameter "limit"`},
		{"integer type", googletest.Request{Method: "GET", Path: "/admin/directory/v1/users", Query: q("maxResults=many")}, "not an integer"},
		{"boolean type", googletest.Request{Method: "GET", Path: "/admin/directory/v1/groups/g1/members", Query: q("includeDerivedMembership=yes")}, "not a boolean"},
		{"enum", googletest.Request{Method: "GET", Path: "/admin/directory/v1/users", Query: q("projection=everything")}, "not one of"},
		{"field mask", googletest.Request{Method: "GET", Path: "/admin/directory/v1/users", Query: q("fields=nextPageToken,users(id,department)")}, `"department"`},
		{"body field", googletest.Request{Method: "POST", Path: "/admin/directory/v1/users/watch", Body: []byte(`{"id":"c","secret":"x"}`)}, `body field "secret"`},
		{"scope", googletest.Request{Method: "GET", Path: "/admin/directory/v1/customer/my_customer/domains"}, "none of which"},
		{"pattern", googletest.Request{Method: "GET", Path: "/admin/reports/v1/activity/users/all/applications/admin", Query: q("startTime=yesterday")}, "does not match the pattern"},
		{"application enum", googletest.Request{Method: "GET", Path: "/admin/reports/v1/activity/users/all/applications/everything"}, "not one of"},
	}
	reportsDoc := loadDiscoveryOf(t, "reports")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r recorder
			doc := d
			if strings.HasPrefix(tc.req.Path, "/admin/reports/") {
				doc = reportsDoc
			}
			checkRequest(&r, doc, tc.req)
			if !slices.ContainsFunc(r.msgs, func(m string) bool { return strings.Contains(m, tc.want) }) {
				t.Errorf("check reported %q, want a message containing %q", r.msgs, tc.want)
			}
		})
	}
}
