package client_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/scimbridge/scimbridge/scim/client"
)

type countObserver struct{ n atomic.Int64 }

func (o *countObserver) ObserveRequest(string, string, int, time.Duration, error) { o.n.Add(1) }

// TestTLSVerifiedByDefault: the default client refuses a target whose certificate it cannot
// verify, at once (a certificate does not fix itself on a retry), and trusts it once its CA is
// configured.
func TestTLSVerifiedByDefault(t *testing.T) {
	var reached atomic.Int64
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Content-Type", "application/scim+json")
		_, _ = w.Write([]byte(`{"Resources":[]}`))
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	ts.StartTLS()
	t.Cleanup(ts.Close)
	obs := &countObserver{}
	c, err := client.New(client.Config{BaseURL: ts.URL + "/t/scim/v2", Observer: obs,
		Token: func(context.Context) (string, error) { return "token", nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FindUser(context.Background(), "userName", "a")
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		t.Fatalf("a self-signed target: err = %v, want an unknown authority", err)
	}
	if client.IsRetryable(err) || obs.n.Load() != 1 || reached.Load() != 0 {
		t.Errorf("retryable %v, %d attempts, %d requests reached the server; want no retry and none",
			client.IsRetryable(err), obs.n.Load(), reached.Load())
	}

	// The identitystore reader's default client verifies too.
	r, err := client.NewIdentityStoreReader(context.Background(), client.IdentityStoreConfig{StoreID: "d-1234567890", Region: "us-east-1",
		Endpoint: ts.URL, Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""), Retry: client.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadState(context.Background()); !errors.As(err, &ua) {
		t.Errorf("identitystore against a self-signed endpoint: %v", err)
	}

	// With the server's certificate trusted, the same request goes through.
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	hc := client.DefaultHTTPClient()
	hc.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool
	c, err = client.New(client.Config{BaseURL: ts.URL + "/t/scim/v2", HTTPClient: hc,
		Token: func(context.Context) (string, error) { return "token", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindUser(context.Background(), "userName", "a"); err != nil || reached.Load() != 1 {
		t.Fatalf("with the CA configured: %v (%d requests)", err, reached.Load())
	}
}
