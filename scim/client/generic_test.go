package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

// dumpMembers returns the emulator's own record of gid's members, sorted: the oracle.
func dumpMembers(t *testing.T, s *emulatortest.Server, gid string) []string {
	t.Helper()
	d, err := s.Emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range d.Memberships {
		if m.GroupID == gid {
			ids = append(ids, m.UserID)
		}
	}
	slices.Sort(ids)
	return ids
}

// seed creates n users and one group holding the first members of them through c.
func seed(t *testing.T, c *client.Client, n, members int) (uids []string, gid string) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		u := scim.User{ExternalID: fmt.Sprintf("e%02d", i), UserName: fmt.Sprintf("g%02d@example.com", i), DisplayName: "G",
			GivenName: "G", FamilyName: "N", Active: true}
		id, err := c.CreateUser(ctx, u, "")
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, id)
	}
	gid, err := c.CreateGroup(ctx, scim.Group{ExternalID: "team", DisplayName: "Team"}, uids[:members])
	if err != nil {
		t.Fatal(err)
	}
	return uids, gid
}

// TestGenericProfileAgainstStrictRFC runs the generic profile against a server that applies RFC
// 7644 literally: member removal takes one members[value eq "<id>"] operation per member (several
// in one PATCH) and removes exactly those; the page size comes from /ServiceProviderConfig; and a
// server that leaves members out of its group listings reads back the real members, not empty
// groups.
func TestGenericProfileAgainstStrictRFC(t *testing.T) {
	ctx := context.Background()
	for _, inListings := range []bool{false, true} {
		t.Run(fmt.Sprintf("MembersInListings=%v", inListings), func(t *testing.T) {
			s := emulatortest.Start(t, emulator.Options{StrictRFC: true, MaxResults: 7, MembersInListings: inListings})
			c := emuClient(t, s, func(cfg *client.Config) { cfg.Profile = client.Generic })
			uids, gid := seed(t, c, 20, 10)
			s.Emu.ResetStats()
			if err := c.PatchGroup(ctx, gid, client.GroupPatch{Remove: uids[2:5], Add: uids[10:12]}); err != nil {
				t.Fatal(err)
			}
			want := slices.Concat(uids[:2], uids[5:12])
			slices.Sort(want)
			if got := dumpMembers(t, s, gid); !slices.Equal(got, want) {
				t.Fatalf("members after removing 3 and adding 2: got %v, want %v", got, want)
			}
			if got := s.Emu.Stats()["scim.PatchGroup"]; got != 1 {
				t.Errorf("got %d PATCH requests, want 1 carrying every operation", got)
			}

			s.Emu.ResetStats()
			st, err := c.ReadState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Users) != 20 || len(st.Groups) != 1 {
				t.Fatalf("read %d users and %d groups, want 20 and 1", len(st.Users), len(st.Groups))
			}
			if got := st.Groups[0].Members; !slices.Equal(got, want) {
				t.Errorf("members read back: got %v, want %v", got, want)
			}
			stats := s.Emu.Stats()
			if got := stats["scim.GetServiceProviderConfig"]; got != 1 {
				t.Errorf("got %d reads of /ServiceProviderConfig, want 1", got)
			}
			if got := stats["scim.ListUsers"]; got != 3 {
				t.Errorf("got %d user pages, want 3 (20 users, 7 a page as /ServiceProviderConfig says)", got)
			}
			wantGroupLists := int64(1)
			if !inListings {
				wantGroupLists += 20 // one member filter per user
			}
			if got := stats["scim.ListGroups"]; got != wantGroupLists {
				t.Errorf("got %d group listings, want %d", got, wantGroupLists)
			}
		})
	}
	t.Run("members by GET", func(t *testing.T) {
		s := emulatortest.Start(t, emulator.Options{StrictRFC: true, MembersInListings: true})
		p := client.Generic
		p.Members = client.MembersByGet
		c := emuClient(t, s, func(cfg *client.Config) { cfg.Profile = p })
		uids, _ := seed(t, c, 5, 3)
		st, err := c.ReadState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(uids[:3])
		slices.Sort(want)
		if got := st.Groups[0].Members; !slices.Equal(got, want) || s.Emu.Stats()["scim.GetGroup"] != 1 {
			t.Errorf("got members %v with %d GETs, want %v with 1", got, s.Emu.Stats()["scim.GetGroup"], want)
		}
	})
}

// TestIdentityCenterProfileAgainstStrictRFC records what the identity_center profile does against
// a server that applies RFC 7644 literally, which is not what it is for: its documented removal
// (path "members" with a value list) empties the whole group there, and a listing that pages past
// 100 with startIndex fails, naming the profile to use, instead of being taken as the whole.
func TestIdentityCenterProfileAgainstStrictRFC(t *testing.T) {
	ctx := context.Background()
	s := emulatortest.Start(t, emulator.Options{StrictRFC: true})
	c := emuClient(t, s, func(cfg *client.Config) { cfg.ProfileHint = "set target.profile: generic" })
	uids, gid := seed(t, c, 5, 5)
	if err := c.PatchGroup(ctx, gid, client.GroupPatch{Remove: uids[:1]}); err != nil {
		t.Fatal(err)
	}
	if got := dumpMembers(t, s, gid); len(got) != 0 {
		t.Errorf("got %v left: the RFC-literal server should have removed every member on Identity Center's form", got)
	}

	for i := range 101 {
		if _, err := c.CreateUser(ctx, scim.User{UserName: fmt.Sprintf("x%03d@example.com", i), DisplayName: "X", GivenName: "X", FamilyName: "X", Active: true}, ""); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.ReadState(ctx)
	if !errors.Is(err, client.ErrTruncated) || !strings.Contains(err.Error(), "target.profile: generic") {
		t.Errorf("got %v, want ErrTruncated naming target.profile", err)
	}
}
