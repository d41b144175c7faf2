// Package emulatortest starts the IAM Identity Center emulator on a loopback httptest server
// for tests in other packages.
package emulatortest

import (
	"net/http/httptest"
	"testing"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// Server is a running emulator. It is closed by t.Cleanup.
type Server struct {
	// URL is the SCIM base URL, e.g. http://127.0.0.1:PORT/<tenant>/scim/v2.
	URL string
	// IdentityStoreEndpoint is the BaseEndpoint for the aws-sdk-go-v2 identitystore client.
	IdentityStoreEndpoint string
	// SSOAdminEndpoint and OrganizationsEndpoint are the BaseEndpoints for the aws-sdk-go-v2
	// ssoadmin and organizations clients.
	SSOAdminEndpoint      string
	OrganizationsEndpoint string
	// Token is the SCIM bearer token.
	Token string
	// StoreID is the identity store id.
	StoreID string
	// StatsURL is the authenticated statistics endpoint.
	StatsURL string
	// Emu is the emulator, for SetFaults, Stats and Dump.
	Emu *emulator.Emulator
	// HTTP is the underlying test server.
	HTTP *httptest.Server
}

// Start starts an emulator with opts (in memory unless opts.DataPath is set) and registers its
// shutdown with t.Cleanup.
func Start(t testing.TB, opts emulator.Options) *Server {
	t.Helper()
	emu, err := emulator.New(opts)
	if err != nil {
		t.Fatalf("emulatortest: start emulator: %v", err)
	}
	ts := httptest.NewServer(emu.Handler())
	t.Cleanup(func() {
		ts.Close()
		if err := emu.Close(); err != nil {
			t.Errorf("emulatortest: close emulator: %v", err)
		}
	})
	return &Server{
		URL:                   ts.URL + emu.SCIMPath(),
		IdentityStoreEndpoint: ts.URL + emu.IdentityStorePath(),
		SSOAdminEndpoint:      ts.URL + emu.SSOAdminPath(),
		OrganizationsEndpoint: ts.URL + emu.OrganizationsPath(),
		Token:                 emu.Token(),
		StoreID:               emu.IdentityStoreID(),
		StatsURL:              ts.URL + emulator.StatsPath,
		Emu:                   emu,
		HTTP:                  ts,
	}
}
