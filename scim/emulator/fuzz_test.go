package emulator_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// fuzzTarget is an emulator with one user and one group; "{uid}" and "{gid}" in fuzzed input
// are replaced by their ids, so the fuzzer reaches real resources.
type fuzzTarget struct {
	emu      *emulator.Emulator
	uid, gid string
}

func newFuzzTarget(t testing.TB) *fuzzTarget {
	srv, c := start(t, emulator.Options{Token: "tok", Tenant: "t"})
	uid := c.createUser("fuzz")
	return &fuzzTarget{emu: srv.Emu, uid: uid, gid: c.createGroup("fuzzers", uid)}
}

func (f *fuzzTarget) fill(s string) string {
	return strings.NewReplacer("{uid}", f.uid, "{gid}", f.gid).Replace(s)
}

// serve runs one request in-process and fails on any 5xx: bad input must give a 4xx.
func (f *fuzzTarget) serve(t *testing.T, method, target string, header http.Header, body string) {
	req := httptest.NewRequest(method, "http://emulator"+"/", strings.NewReader(body))
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return
	}
	req.URL = u
	req.RequestURI = target
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.emu.Handler().ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("%s %s %q: no answer after 20s; goroutines:\n%s", method, target, body, buf[:n])
	}
	if rec.Code >= 500 {
		t.Fatalf("%s %s %q: status %d: %s", method, target, body, rec.Code, rec.Body.String())
	}
}

var fuzzMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

func FuzzSCIMRequest(f *testing.F) {
	seeds := []struct {
		m          uint8
		path, body string
	}{
		{1, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","displayName":"A","name":{"givenName":"g","familyName":"f"},"emails":[{"value":"a@x","primary":true}]}`},
		{1, "/Users", `{"userName":"b","displayName":"B","name":{"givenName":"g","familyName":"f"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"{uid}"}}}`},
		{2, "/Users/{uid}", `{"userName":"fuzz","displayName":"F","name":{"givenName":"g","familyName":"f"},"active":false}`},
		{3, "/Users/{uid}", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value","value":"x@y"}]}`},
		{3, "/Users/{uid}", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","value":{"title":"t","name":{"givenName":"q"}}}]}`},
		{3, "/Users/{uid}", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]}`},
		{1, "/Groups", `{"displayName":"g2","members":[{"value":"{uid}"}]}`},
		{3, "/Groups/{gid}", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"{uid}\"]"}]}`},
		{3, "/Groups/{gid}", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"{uid}"}]},{"op":"replace","value":{"displayName":"x"}}]}`},
		{0, "/Users?filter=userName%20eq%20%22fuzz%22&count=1", ``},
		{0, "/Groups?filter=members.value%20eq%20%22{uid}%22&cursor=abc", ``},
		{4, "/Users/{uid}", ``},
		{1, "/Users", `{"userName":`},
		{1, "/Users", `{"emails":[1,2,{"display":null}]}`},
	}
	for _, s := range seeds {
		f.Add(s.m, s.path, s.body)
	}
	tgt := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, m uint8, path, body string) {
		h := http.Header{"Authorization": {"Bearer tok"}}
		tgt.serve(t, fuzzMethods[int(m)%len(fuzzMethods)], "/t/scim/v2"+tgt.fill(path), h, tgt.fill(body))
	})
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "a"`, `id eq "{uid}" and manager eq "x"`, `members.value eq "{uid}"`,
		`id eq "{gid}" and members eq "{uid}"`, `groups.value eq "{gid}"`, `userName eq "a" or userName eq "b"`,
		`emails[type eq "work" and value co "@"]`, `not(userName pr)`, `meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`userName eq 1e400`, `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, `(((`,
	} {
		f.Add(s, "")
	}
	tgt := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, filter, cursor string) {
		h := http.Header{"Authorization": {"Bearer tok"}}
		v := url.Values{"filter": {tgt.fill(filter)}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		tgt.serve(t, "GET", "/t/scim/v2/Users?"+v.Encode(), h, "")
		tgt.serve(t, "GET", "/t/scim/v2/Groups?"+v.Encode(), h, "")
	})
}

func FuzzIdentityStore(f *testing.F) {
	for _, s := range [][2]string{
		{"ListUsers", `{"IdentityStoreId":"{store}","MaxResults":1}`},
		{"ListUsers", `{"IdentityStoreId":"{store}","Filters":[{"AttributePath":"UserName","AttributeValue":"fuzz"}],"Extensions":["aws:identitystore:enterprise"]}`},
		{"ListGroupMemberships", `{"IdentityStoreId":"{store}","GroupId":"{gid}","NextToken":"x"}`},
		{"ListGroupMembershipsForMember", `{"IdentityStoreId":"{store}","MemberId":{"UserId":"{uid}"}}`},
		{"GetUserId", `{"IdentityStoreId":"{store}","AlternateIdentifier":{"UniqueAttribute":{"AttributePath":"userName","AttributeValue":"fuzz"}}}`},
		{"GetGroupId", `{"IdentityStoreId":"{store}","AlternateIdentifier":{"ExternalId":{"Issuer":"scim","Id":"ext-fuzzers"}}}`},
		{"IsMemberInGroups", `{"IdentityStoreId":"{store}","MemberId":{"UserId":"{uid}"},"GroupIds":["{gid}","x"]}`},
		{"CreateUser", `{"IdentityStoreId":"{store}","UserName":"n","Emails":[{"Value":"a@b","Primary":true}],"Extensions":{"aws:identitystore:enterprise":{"department":"d"}}}`},
		{"UpdateUser", `{"IdentityStoreId":"{store}","UserId":"{uid}","Operations":[{"AttributePath":"name.givenName","AttributeValue":"z"},{"AttributePath":"title","AttributeValue":null}]}`},
		{"CreateGroupMembership", `{"IdentityStoreId":"{store}","GroupId":"{gid}","MemberId":{"UserId":"{uid}"}}`},
		{"DeleteGroupMembership", `{"IdentityStoreId":"{store}","MembershipId":"x"}`},
		{"UpdateGroup", `{"IdentityStoreId":"{store}","GroupId":"{gid}","Operations":[{"AttributePath":"displayName","AttributeValue":"q"}]}`},
		{"DescribeUser", `{"IdentityStoreId":"{store}","UserId":"{uid}"}`},
		{"Nope", `{}`},
	} {
		f.Add(s[0], s[1])
	}
	tgt := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, op, body string) {
		h := http.Header{
			"Authorization": {"AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/identitystore/aws4_request"},
			"X-Amz-Target":  {"AWSIdentityStore." + op},
			"Content-Type":  {"application/x-amz-json-1.1"},
		}
		body = strings.ReplaceAll(tgt.fill(body), "{store}", tgt.emu.IdentityStoreID())
		tgt.serve(t, "POST", "/identitystore/", h, body)
	})
}
