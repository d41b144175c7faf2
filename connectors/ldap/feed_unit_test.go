package ldap_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
)

func TestGUIDBytesInvertsGUIDString(t *testing.T) {
	raw := []byte{0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}
	s, err := ldap.GUIDString(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ldap.GUIDBytes(s)
	if err != nil || !bytes.Equal(got, raw) {
		t.Errorf("GUIDBytes(%q) = %x, %v; want %x", s, got, err, raw)
	}
	for _, bad := range []string{"", "12345678", "12345678-1234-5678-1234-56789abcdefg", "12345678123456781234567812345678abcd"} {
		if got, err := ldap.GUIDBytes(bad); err == nil {
			t.Errorf("GUIDBytes(%q) = %x, want an error", bad, got)
		}
	}
}

// TestFeedConfig: the feed keys' defaults, and every mistake in them reported at once.
func TestFeedConfig(t *testing.T) {
	base := func(flavour string) ldap.Config {
		return ldap.Config{
			FlavourName: flavour, URL: "ldap://127.0.0.1:1",
			Users:  ldap.UsersConfig{BaseDN: "ou=people,dc=example,dc=test"},
			Groups: ldap.GroupsConfig{BaseDN: "ou=groups,dc=example,dc=test"},
		}
	}
	for _, tc := range []struct {
		name    string
		flavour string
		feed    ldap.FeedConfig
		id      string
		want    []string // substrings of the error, in order; none: valid
	}{
		{name: "defaults", flavour: ldap.FlavourOpenLDAP},
		{name: "ad dirsync", flavour: ldap.FlavourActiveDirectory, feed: ldap.FeedConfig{Mode: ldap.FeedDirSync, PollInterval: 5 * time.Second}},
		{name: "openldap timestamp", flavour: ldap.FlavourGeneric, feed: ldap.FeedConfig{Mode: ldap.FeedTimestamp}, id: "uid"},
		{name: "off", flavour: ldap.FlavourActiveDirectory, feed: ldap.FeedConfig{Mode: ldap.FeedOff}},
		{name: "unknown mode and negative interval", flavour: ldap.FlavourOpenLDAP, feed: ldap.FeedConfig{Mode: "push", PollInterval: -time.Second},
			want: []string{`feed.mode "push" is not one of`, "feed.poll_interval -1s is negative"}},
		{name: "dirsync on openldap", flavour: ldap.FlavourOpenLDAP, feed: ldap.FeedConfig{Mode: ldap.FeedDirSync},
			want: []string{"feed.mode dirsync needs flavour active_directory", "feed.mode dirsync needs id_attribute objectGUID"}},
		{name: "syncrepl on ad", flavour: ldap.FlavourActiveDirectory, feed: ldap.FeedConfig{Mode: ldap.FeedSyncrepl},
			want: []string{"feed.mode syncrepl is for OpenLDAP", "feed.mode syncrepl needs id_attribute entryUUID"}},
		{name: "syncrepl with another id", flavour: ldap.FlavourOpenLDAP, feed: ldap.FeedConfig{Mode: ldap.FeedSyncrepl}, id: "uid",
			want: []string{`feed.mode syncrepl needs id_attribute entryUUID (syncrepl names entries by it), not "uid"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base(tc.flavour)
			c.Feed, c.IDAttribute = tc.feed, tc.id
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tc.want)
			}
			rest := err.Error()
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("Validate: %v\nwant it to say %q", err, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestFeedOff: with feed.mode off the source says so instead of opening a feed; an LDIF
// source has no feed at all.
func TestFeedOff(t *testing.T) {
	c := ldap.Config{FlavourName: ldap.FlavourOpenLDAP, URL: "ldap://127.0.0.1:1", Feed: ldap.FeedConfig{Mode: ldap.FeedOff},
		Users:  ldap.UsersConfig{BaseDN: "ou=people,dc=example,dc=test"},
		Groups: ldap.GroupsConfig{BaseDN: "ou=groups,dc=example,dc=test"}}
	src, err := c.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := src.(connectors.FeedSource).Feed(context.Background())
	if err == nil || !strings.Contains(err.Error(), "feed.mode off") {
		t.Errorf("Feed with mode off = %v, %v; want an error naming feed.mode off", fd, err)
	}
	lc := ldap.Config{FlavourName: ldap.FlavourOpenLDAP, LDIFFile: "x.ldif", Feed: ldap.FeedConfig{Mode: ldap.FeedSyncrepl}}
	if err := lc.Validate(); err == nil || !strings.Contains(err.Error(), "feed.mode syncrepl needs a server") {
		t.Errorf("ldif_file with feed.mode syncrepl: %v, want an error", err)
	}
}
