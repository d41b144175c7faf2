package client_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

// TestEveryTableAttributeRoundTrips writes a user with a distinct value in every row of
// scim.UserAttributes and reads it back through SCIM and through identitystore: a row the
// table gains that a reader or the writer does not carry fails here, by its SCIM path.
func TestEveryTableAttributeRoundTrips(t *testing.T) {
	s := emulatortest.Start(t, emulator.Options{})
	c := emuClient(t, s, nil)
	ctx := context.Background()
	boss := scim.User{ExternalID: "boss", UserName: "boss@example.com", DisplayName: "Boss", GivenName: "B", FamilyName: "O", Active: true}
	bossID, err := c.CreateUser(ctx, boss, "")
	if err != nil {
		t.Fatal(err)
	}
	u := scim.User{Active: true}
	for i, a := range scim.UserAttributes() {
		switch {
		case a.Bool:
		case a.Path == "manager":
			a.Set(&u, bossID) // as a target holds it
		case a.Path == "emails":
			a.Set(&u, "every@example.com")
		default:
			a.Set(&u, fmt.Sprintf("v%02d", i))
		}
	}
	id, err := c.CreateUser(ctx, u, bossID)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	readers := map[string]interface {
		ReadState(context.Context) (*scim.TargetState, error)
	}{"scim": c, "identitystore": emuReader(t, s, nil)}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			st, err := r.ReadState(ctx)
			if err != nil {
				t.Fatalf("ReadState: %v", err)
			}
			for _, got := range st.Users {
				if got.ID != id {
					continue
				}
				if d := cmp.Diff(u.Attributes(), got.Attributes(), cmpopts.EquateEmpty()); d != "" {
					t.Errorf("attributes read back (-want +got):\n%s", d)
				}
				return
			}
			t.Fatalf("user %s not read back", id)
		})
	}
}
