package awssecret_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/scimbridge/scimbridge/connectors/secret"
	"github.com/scimbridge/scimbridge/connectors/secret/awssecret"
)

// fakeAWS speaks the AWS JSON 1.1 protocol of Secrets Manager (GetSecretValue) and SSM
// (GetParameter) well enough for the real SDK clients.
type fakeAWS struct {
	mu       sync.Mutex
	secrets  map[string]string // name or ARN -> SecretString
	params   map[string]string // name -> value (as stored; decrypted only WithDecryption)
	calls    map[string]int    // target -> count
	regions  []string          // region of each request's signature
	failWith int               // when set, every request answers this status
}

func newFakeAWS() *fakeAWS {
	return &fakeAWS{secrets: map[string]string{}, params: map[string]string{}, calls: map[string]int{}}
}

func (f *fakeAWS) set(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[name] = value
}

func (f *fakeAWS) count(target string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[target]
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	auth := r.Header.Get("Authorization")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[target]++
	// Credential=AKID/20260101/REGION/SERVICE/aws4_request
	if _, cred, ok := strings.Cut(auth, "Credential="); ok {
		if parts := strings.Split(cred, "/"); len(parts) > 3 {
			f.regions = append(f.regions, parts[2])
		}
	}
	fail := func(status int, typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", typ)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") ||
		!strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		fail(400, "SerializationException", "bad request")
		return
	}
	if f.failWith != 0 {
		fail(f.failWith, "InternalServiceError", "boom")
		return
	}
	ok := func(v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch target {
	case "secretsmanager.GetSecretValue":
		var in struct{ SecretId string }
		if err := json.Unmarshal(body, &in); err != nil {
			fail(400, "SerializationException", err.Error())
			return
		}
		v, found := f.secrets[in.SecretId]
		if !found {
			fail(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
			return
		}
		ok(map[string]any{"ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + in.SecretId + "-AbCdEf",
			"Name": in.SecretId, "SecretString": v, "VersionId": "v1", "VersionStages": []string{"AWSCURRENT"}, "CreatedDate": 1.7e9})
	case "AmazonSSM.GetParameter":
		var in struct {
			Name           string
			WithDecryption bool
		}
		if err := json.Unmarshal(body, &in); err != nil {
			fail(400, "SerializationException", err.Error())
			return
		}
		v, found := f.params[in.Name]
		if !found {
			fail(400, "ParameterNotFound", "")
			return
		}
		if !in.WithDecryption {
			v = "ENCRYPTED-BLOB"
		}
		ok(map[string]any{"Parameter": map[string]any{"Name": in.Name, "Type": "SecureString", "Value": v, "Version": 3,
			"ARN": "arn:aws:ssm:eu-west-1:123456789012:parameter" + in.Name, "DataType": "text"}})
	default:
		fail(400, "UnknownOperationException", target)
	}
}

// newResolver returns a Resolver whose real SDK clients talk to the fake, on a clock the test moves.
func newResolver(t *testing.T, f *fakeAWS, log io.Writer) (*secret.Resolver, *time.Time) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	if log == nil {
		log = io.Discard
	}
	r := secret.NewResolver(secret.ResolverOptions{
		Backends: awssecret.Backends(awssecret.Options{AWSConfig: func(_ context.Context, region string) (aws.Config, error) {
			if region == "" {
				region = "eu-west-1"
			}
			return aws.Config{
				Region:           region,
				Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secretkey", ""),
				BaseEndpoint:     aws.String(srv.URL),
				RetryMaxAttempts: 1,
			}, nil
		}}),
		LookupEnv: func(k string) (string, bool) {
			if k == "SCIM_TOKEN" {
				return "from-env", true
			}
			return "", false
		},
		Logger: slog.New(slog.NewTextHandler(log, nil)),
		Now:    func() time.Time { return now },
	})
	return r, &now
}

func TestResolveReferences(t *testing.T) {
	f := newFakeAWS()
	f.secrets["scimbridge/scim"] = `{"token":"sm-token-1","port":636,"nested":{"a":1}}`
	f.secrets["plain"] = "sm-plain"
	f.secrets["arn:aws:secretsmanager:us-west-2:123456789012:secret:scim-AbCdEf"] = "by-arn"
	f.params["/scimbridge/ldap/bind_password"] = "ssm-secret"
	f.params["/scimbridge/json"] = `{"password":"ssm-json"}`
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ := newResolver(t, f, nil)
	for _, tc := range []struct {
		name, ref, want string
		wantErr         error
	}{
		{name: "secrets manager json key", ref: "aws-secretsmanager://scimbridge/scim#token", want: "sm-token-1"},
		{name: "secrets manager number key", ref: "aws-secretsmanager://scimbridge/scim#port", want: "636"},
		{name: "secrets manager whole", ref: "aws-secretsmanager://plain", want: "sm-plain"},
		{name: "secrets manager arn", ref: "aws-secretsmanager://arn:aws:secretsmanager:us-west-2:123456789012:secret:scim-AbCdEf", want: "by-arn"},
		{name: "ssm decrypted", ref: "aws-ssm:///scimbridge/ldap/bind_password", want: "ssm-secret"},
		{name: "ssm json key with region", ref: "aws-ssm:///scimbridge/json?region=eu-central-1#password", want: "ssm-json"},
		{name: "file", ref: "file://" + tokenFile, want: "from-file"},
		{name: "env", ref: "env://SCIM_TOKEN", want: "from-env"},
		{name: "secret missing", ref: "aws-secretsmanager://nope", wantErr: secret.ErrNotFound},
		{name: "key missing", ref: "aws-secretsmanager://scimbridge/scim#nokey", wantErr: secret.ErrNotFound},
		{name: "key not a string", ref: "aws-secretsmanager://scimbridge/scim#nested"},
		{name: "not json", ref: "aws-secretsmanager://plain#token"},
		{name: "parameter missing", ref: "aws-ssm:///nope", wantErr: secret.ErrNotFound},
		{name: "env missing", ref: "env://NOPE", wantErr: secret.ErrNotFound},
		{name: "file missing", ref: "file://" + filepath.Join(dir, "nope"), wantErr: os.ErrNotExist},
		{name: "bad query", ref: "aws-ssm:///x?profile=y", wantErr: secret.ErrBadRef},
		{name: "empty name", ref: "aws-secretsmanager://#k", wantErr: secret.ErrBadRef},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Value(context.Background(), tc.ref)
			if tc.want != "" {
				if err != nil || got.Reveal() != tc.want {
					t.Fatalf("Value(%q) = %q, %v; want %q", tc.ref, got.Reveal(), err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Value(%q) = %q, want an error", tc.ref, got.Reveal())
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Value(%q) error %v, want %v", tc.ref, err, tc.wantErr)
			}
			for _, v := range []string{"sm-token-1", "sm-plain", "ssm-secret", "from-env", "by-arn"} {
				if strings.Contains(err.Error(), v) {
					t.Fatalf("error leaks a secret value: %v", err)
				}
			}
		})
	}
	// The ARN's region and ?region= choose the region the request is signed for.
	f.mu.Lock()
	regions := strings.Join(f.regions, ",")
	f.mu.Unlock()
	for _, want := range []string{"us-west-2", "eu-central-1", "eu-west-1"} {
		if !strings.Contains(regions, want) {
			t.Errorf("signed regions %s, want %s among them", regions, want)
		}
	}
}

func TestResolverCachesAndPicksUpRotation(t *testing.T) {
	f := newFakeAWS()
	f.set("scim", `{"token":"v1"}`)
	r, now := newResolver(t, f, nil)
	ctx := context.Background()
	ref := "aws-secretsmanager://scim#token"
	for i := 0; i < 100; i++ { // a SCIM client asks once per request
		s, err := r.Resolve(ctx, "target.token", secret.Secret(ref), "")
		if err != nil || s.Reveal() != "v1" {
			t.Fatalf("Resolve = %q, %v; want v1", s.Reveal(), err)
		}
	}
	if got := f.count("secretsmanager.GetSecretValue"); got != 1 {
		t.Fatalf("100 resolutions within the TTL made %d AWS calls, want 1", got)
	}
	f.set("scim", `{"token":"v2"}`) // rotated
	*now = now.Add(secret.DefaultTTL - time.Second)
	if s, _ := r.Resolve(ctx, "target.token", secret.Secret(ref), ""); s.Reveal() != "v1" {
		t.Fatalf("within the TTL got %q, want the cached v1", s.Reveal())
	}
	*now = now.Add(2 * time.Second)
	if s, err := r.Resolve(ctx, "target.token", secret.Secret(ref), ""); err != nil || s.Reveal() != "v2" {
		t.Fatalf("after the TTL got %q, %v; want the rotated v2", s.Reveal(), err)
	}
	if got := f.count("secretsmanager.GetSecretValue"); got != 2 {
		t.Fatalf("AWS calls = %d, want 2", got)
	}
	if got := r.Fetches(); got != 2 {
		t.Fatalf("Fetches() = %d, want 2", got)
	}
}

func TestResolverServesStaleOnOutageOnly(t *testing.T) {
	f := newFakeAWS()
	f.set("scim", "v1")
	var log bytes.Buffer
	r, now := newResolver(t, f, &log)
	ctx := context.Background()
	if _, err := r.Value(ctx, "aws-secretsmanager://scim"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.failWith = http.StatusInternalServerError
	f.mu.Unlock()
	*now = now.Add(secret.DefaultTTL + time.Minute)
	s, err := r.Value(ctx, "aws-secretsmanager://scim")
	if err != nil || s.Reveal() != "v1" {
		t.Fatalf("during an outage got %q, %v; want the stale v1", s.Reveal(), err)
	}
	if !strings.Contains(log.String(), "secret refresh failed") || strings.Contains(log.String(), "v1\"") {
		t.Fatalf("log = %s; want a warning without the value", log.String())
	}
	*now = now.Add(secret.DefaultMaxStale)
	if _, err := r.Value(ctx, "aws-secretsmanager://scim"); err == nil {
		t.Fatal("past MaxStale the outage must surface as an error")
	}
	// A deleted secret is an error at once, never a stale value.
	f.mu.Lock()
	f.failWith = 0
	delete(f.secrets, "scim")
	f.mu.Unlock()
	if _, err := r.Value(ctx, "aws-secretsmanager://scim"); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("deleted secret: error %v, want ErrNotFound", err)
	}
}
