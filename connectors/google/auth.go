package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"golang.org/x/oauth2"
	googleoauth "golang.org/x/oauth2/google"
	admin "google.golang.org/api/admin/directory/v1"
	reports "google.golang.org/api/admin/reports/v1"
	"google.golang.org/api/impersonate"
	"google.golang.org/api/option"
)

// Scopes are the OAuth scopes the connector asks for: the narrowest read-only ones that
// cover Users.List/Get/Watch and Channels.Stop (user.readonly) and Groups.List plus
// Members.List (group.readonly; group.member.readonly alone cannot list groups, and
// group.readonly already covers members, so asking for both would add nothing).
var Scopes = []string{
	admin.AdminDirectoryUserReadonlyScope,
	admin.AdminDirectoryGroupReadonlyScope,
}

// FeedScopes are the scopes of the change feed's requests: Scopes and the Reports API's
// admin.reports.audit.readonly (activities.list of the admin audit log). They are asked for
// only when the feed is opened, so a source without a feed needs no more delegation.
var FeedScopes = append(slices.Clip(Scopes), reports.AdminReportsAuditReadonlyScope)

// ErrAuth marks failures to set up or obtain credentials.
var ErrAuth = errors.New("google: authentication")

// tokenSource builds the OAuth token source for the configured auth mode and scopes. base is
// the HTTP client used for the token exchange itself (tests point it at a fake).
func tokenSource(ctx context.Context, c Config, base *http.Client, scopes []string) (oauth2.TokenSource, string, error) {
	if base != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, base)
	}
	if c.ImpersonateServiceAccount != "" {
		opts := []option.ClientOption{}
		if base != nil {
			opts = append(opts, option.WithHTTPClient(base))
		}
		ts, err := impersonate.CredentialsTokenSource(ctx, impersonate.CredentialsConfig{
			TargetPrincipal: c.ImpersonateServiceAccount,
			Scopes:          scopes,
			Subject:         c.Subject,
			Delegates:       c.Delegates,
		}, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("%w: impersonate %s as %s: %w", ErrAuth, c.ImpersonateServiceAccount, c.Subject, err)
		}
		return ts, c.ImpersonateServiceAccount, nil
	}
	key, err := c.Secrets.Resolve(ctx, "service_account_key", c.ServiceAccountKey, c.ServiceAccountKeyFile)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrAuth, err)
	}
	var probe struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
	}
	// The error of json.Unmarshal can quote the input: never wrap it, it may hold the key.
	if json.Unmarshal([]byte(key.Reveal()), &probe) != nil || probe.Type != "service_account" {
		return nil, "", fmt.Errorf("%w: service_account_key is not a service-account key (JSON with type service_account)", ErrAuth)
	}
	jwt, err := googleoauth.JWTConfigFromJSON([]byte(key.Reveal()), scopes...)
	if err != nil {
		return nil, "", fmt.Errorf("%w: service_account_key of %s cannot be used", ErrAuth, probe.ClientEmail)
	}
	jwt.Subject = c.Subject
	return oauth2.ReuseTokenSource(nil, jwt.TokenSource(ctx)), probe.ClientEmail, nil
}
