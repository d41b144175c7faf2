package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
)

// primaryCase is a user whose emails, phone numbers and addresses hold several values, read by
// both readers: the model keeps the one marked primary, else the first.
type primaryCase struct {
	name string
	// scimUser is the user as a SCIM target answers it; isUser as identitystore does.
	scimUser, isUser string
	want             scim.User
}

var primaryCases = []primaryCase{
	{
		name: "primary last",
		scimUser: `{"id":"u1","userName":"a","emails":[{"value":"x@example.com","type":"home"},{"value":"y@example.com","type":"work","primary":true}],
			"phoneNumbers":[{"value":"1","type":"home"},{"value":"2","type":"work","primary":true}],
			"addresses":[{"locality":"Ghent"},{"locality":"Lyon","type":"work","primary":true}]}`,
		isUser: `{"UserId":"u1","UserName":"a","Emails":[{"Value":"x@example.com","Type":"home"},{"Value":"y@example.com","Type":"work","Primary":true}],
			"PhoneNumbers":[{"Value":"1","Type":"home"},{"Value":"2","Type":"work","Primary":true}],
			"Addresses":[{"Locality":"Ghent"},{"Locality":"Lyon","Type":"work","Primary":true}]}`,
		want: scim.User{UserName: "a", Email: "y@example.com", EmailType: "work", PhoneNumber: "2", PhoneType: "work",
			Address: &scim.Address{Locality: "Lyon", Type: "work"}, Active: true},
	},
	{
		name: "no primary",
		scimUser: `{"id":"u1","userName":"a","emails":[{"value":"x@example.com","type":"home"},{"value":"y@example.com"}],
			"phoneNumbers":[{"value":"1"},{"value":"2"}],"addresses":[{"locality":"Ghent"},{"locality":"Lyon"}]}`,
		isUser: `{"UserId":"u1","UserName":"a","Emails":[{"Value":"x@example.com","Type":"home"},{"Value":"y@example.com"}],
			"PhoneNumbers":[{"Value":"1"},{"Value":"2"}],"Addresses":[{"Locality":"Ghent"},{"Locality":"Lyon"}]}`,
		want: scim.User{UserName: "a", Email: "x@example.com", EmailType: "home", PhoneNumber: "1",
			Address: &scim.Address{Locality: "Ghent"}, Active: true},
	},
	{
		name:     "empty primary address",
		scimUser: `{"id":"u1","userName":"a","addresses":[{"locality":"Ghent"},{"primary":true}]}`,
		isUser:   `{"UserId":"u1","UserName":"a","Addresses":[{"Locality":"Ghent"},{"Primary":true}]}`,
		want:     scim.User{UserName: "a", Active: true},
	},
}

// TestReadersPickThePrimaryValue reads each case through the SCIM client and through the
// identitystore reader; both must keep the same value of each multi-valued attribute.
func TestReadersPickThePrimaryValue(t *testing.T) {
	for _, tc := range primaryCases {
		t.Run(tc.name+"/scim", func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/scim+json")
				_, _ = w.Write([]byte(`{"totalResults":1,"itemsPerPage":1,"Resources":[` + tc.scimUser + `]}`))
			}))
			defer srv.Close()
			c, err := client.New(client.Config{BaseURL: srv.URL, Token: func(context.Context) (string, error) { return "t", nil }})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.FindUser(context.Background(), "userName", "a")
			if err != nil || got == nil {
				t.Fatalf("FindUser: got %v, %v; want the user", got, err)
			}
			if d := cmp.Diff(tc.want, got.User); d != "" {
				t.Errorf("user (-want +got):\n%s", d)
			}
		})
		t.Run(tc.name+"/identitystore", func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				switch op := r.Header.Get("X-Amz-Target"); op {
				case "AWSIdentityStore.ListUsers":
					_, _ = w.Write([]byte(`{"Users":[` + tc.isUser + `]}`))
				case "AWSIdentityStore.ListGroups":
					_, _ = w.Write([]byte(`{"Groups":[]}`))
				default:
					t.Errorf("unexpected operation %q", op)
					w.WriteHeader(http.StatusBadRequest)
				}
			}))
			defer srv.Close()
			r, err := client.NewIdentityStoreReader(context.Background(), client.IdentityStoreConfig{
				StoreID: "d-1234567890", Region: "eu-west-1", Endpoint: srv.URL,
				Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
				Retry:       client.RetryPolicy{MaxAttempts: 1, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
			})
			if err != nil {
				t.Fatal(err)
			}
			st, err := r.ReadState(context.Background())
			if err != nil {
				t.Fatalf("ReadState: %v", err)
			}
			if len(st.Users) != 1 {
				t.Fatalf("users: got %d, want 1", len(st.Users))
			}
			if d := cmp.Diff(tc.want, st.Users[0].User); d != "" {
				t.Errorf("user (-want +got):\n%s", d)
			}
		})
	}
}
