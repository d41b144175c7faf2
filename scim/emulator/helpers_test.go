package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

// client is a plain SCIM conversation partner for tests.
type client struct {
	t     testing.TB
	base  string
	token string
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func newClient(t testing.TB, srv *emulatortest.Server) *client {
	return &client{t: t, base: srv.URL, token: srv.Token}
}

func start(t testing.TB, opts emulator.Options) (*emulatortest.Server, *client) {
	srv := emulatortest.Start(t, opts)
	return srv, newClient(t, srv)
}

func (c *client) do(method, path string, body any) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatalf("new request: %v", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	if r.status >= 500 && r.status != http.StatusInternalServerError {
		c.t.Errorf("%s %s: status %d", method, path, r.status)
	}
	return r
}

// must asserts the status and returns the response.
func (c *client) must(status int, method, path string, body any) response {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != status {
		c.t.Fatalf("%s %s: got status %d, want %d; body %s", method, path, r.status, status, r.raw)
	}
	return r
}

func user(name string) map[string]any {
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    name,
		"externalId":  "ext-" + name,
		"displayName": "User " + name,
		"name":        map[string]any{"givenName": "Given", "familyName": "Family"},
		"emails":      []any{map[string]any{"value": name + "@example.com", "type": "work", "primary": true}},
		"active":      true,
	}
}

func group(name string, members ...string) map[string]any {
	ms := []any{}
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": name,
		"externalId":  "ext-" + name,
		"members":     ms,
	}
}

func patch(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

func op(o, path string, value any) map[string]any {
	m := map[string]any{"op": o}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}

func (c *client) createUser(name string) string {
	c.t.Helper()
	return c.must(http.StatusCreated, "POST", "/Users", user(name)).body["id"].(string)
}

func (c *client) createGroup(name string, members ...string) string {
	c.t.Helper()
	return c.must(http.StatusCreated, "POST", "/Groups", group(name, members...)).body["id"].(string)
}

// resources returns the Resources of a list response.
func (r response) resources() []map[string]any {
	list, _ := r.body["Resources"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		out = append(out, x.(map[string]any))
	}
	return out
}

// checkAWSError asserts the body has Identity Center's error shape with the given status.
func checkAWSError(t testing.TB, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d, want %d; body %s", r.status, status, r.raw)
	}
	const urn = "urn:ietf:params:scim:api:messages:2.0:Error"
	for _, k := range []string{"schema", "schemas"} {
		l, ok := r.body[k].([]any)
		if !ok || len(l) != 1 || l[0] != urn {
			t.Errorf("%s = %v, want [%s]; body %s", k, r.body[k], urn, r.raw)
		}
	}
	if s, ok := r.body["status"].(string); !ok || s != itoa(status) {
		t.Errorf("status = %#v, want string %q", r.body["status"], itoa(status))
	}
	for _, k := range []string{"exceptionRequestId", "timeStamp", "detail"} {
		if s, _ := r.body[k].(string); s == "" {
			t.Errorf("%s missing in %s", k, r.raw)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
