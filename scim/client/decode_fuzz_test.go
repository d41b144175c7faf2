package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
)

// FuzzDecodeAnswers makes a fake target answer every request with one fuzzed status and body, and
// runs each client operation against it: decoding a list, user, group or error body must never
// panic nor hang, an error status must come back as an *APIError carrying it, and a success must
// never be taken from an error status. Run: go test -fuzz FuzzDecodeAnswers -fuzztime 2m ./scim/client/
func FuzzDecodeAnswers(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"Resources":[{"id":"u1","userName":"a","externalId":"e","name":{"givenName":"A","familyName":"B"},"emails":[{"value":"a@x","primary":true}],"active":true}],"itemsPerPage":1}`},
		{200, `{"Resources":[{"id":"g1","displayName":"G","members":[{"value":"u1"}]}],"nextCursor":"c1"}`},
		{200, `{"totalResults":5,"Resources":[{"id":"u1"}]}`},
		{200, `{"Resources":null,"totalResults":-1}`},
		{201, `{"id":"new-id","userName":"a"}`},
		{201, `{"id":7}`},
		{200, `{"Resources":[{"id":"u1","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m"}},"emails":[{"value":"x"},{"value":"y","primary":true}],"addresses":[{}],"phoneNumbers":[{"value":"1"}]}]}`},
		{409, `{"schema":["urn:ietf:params:scim:api:messages:2.0:Error"],"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Refused to create a new, duplicate resource.","status":"409","exceptionRequestId":"r1"}`},
		{429, `{"detail":"Throttled","status":429}`},
		{400, `not json at all`},
		{500, ``},
		{404, `{"detail":` + "\"\\u0000\\ud800\"}"},
		{200, `{"Resources":[`},
		{204, ``},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body))
	}
	var mu sync.Mutex
	var status int
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		st, b := status, body
		mu.Unlock()
		w.Header().Set("Content-Type", "application/scim+json")
		w.WriteHeader(st)
		_, _ = w.Write(b)
	}))
	f.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL + "/t/scim/v2",
		Token: func(context.Context) (string, error) { return "token", nil },
		Retry: client.RetryPolicy{MaxAttempts: 1}, ReadConcurrency: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, st int, b []byte) {
		if st < 200 || st > 599 || st == 204 && len(b) > 0 || st == 304 {
			return // not something net/http lets a handler send as given
		}
		if st >= 300 && st < 400 {
			return // redirects are followed by net/http, not decoded
		}
		mu.Lock()
		status, body = st, b
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		check := func(op string, err error) {
			if ctx.Err() != nil {
				t.Fatalf("%s did not finish: %v", op, err)
			}
			if st >= 400 {
				var ae *client.APIError
				if !errors.As(err, &ae) || ae.Status != st {
					t.Fatalf("%s: status %d gave error %v", op, st, err)
				}
			}
		}
		_, err := c.FindUser(ctx, "userName", "a")
		check("FindUser", err)
		_, err = c.FindGroup(ctx, "displayName", "G")
		check("FindGroup", err)
		_, err = c.ReadState(ctx)
		check("ReadState", err)
		id, err := c.CreateUser(ctx, scim.User{ExternalID: "e", UserName: "a", DisplayName: "A", GivenName: "A", FamilyName: "B"}, "")
		check("CreateUser", err)
		if err == nil && id == "" {
			t.Fatalf("CreateUser succeeded without an id (status %d, body %q)", st, b)
		}
		_, err = c.CreateGroup(ctx, scim.Group{ExternalID: "g", DisplayName: "G"}, []string{"u1"})
		check("CreateGroup", err)
		check("PatchGroup", c.PatchGroup(ctx, "g1", client.GroupPatch{Add: []string{"u1"}}))
		check("DeleteUser", c.DeleteUser(ctx, "u1"))
	})
}
