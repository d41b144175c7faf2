package secret_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

func TestResolveKeepsLiteralAndFileBehaviour(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pw")
	if err := os.WriteFile(p, []byte("file-value\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := secret.NewResolver(secret.ResolverOptions{LookupEnv: func(string) (string, bool) { return "", false }})
	ctx := context.Background()
	if s, err := r.Resolve(ctx, "x", "literal", ""); err != nil || s.Reveal() != "literal" {
		t.Fatalf("literal: %q, %v", s.Reveal(), err)
	}
	if s, err := r.Resolve(ctx, "x", "", p); err != nil || s.Reveal() != "file-value" {
		t.Fatalf("file: %q, %v", s.Reveal(), err)
	}
	if _, err := r.Resolve(ctx, "x", "a", p); err == nil || !strings.Contains(err.Error(), "x and x_file are both set") {
		t.Fatalf("both: %v", err)
	}
	_, err := r.Resolve(ctx, "target.token", "env://NOPE", "")
	if err == nil || !strings.HasPrefix(err.Error(), "target.token: env://NOPE") {
		t.Fatalf("error %v, want it to name the field and the reference", err)
	}
	// A nil Resolver (a connector config nobody gave one) resolves with the default options.
	t.Setenv("SCIMBRIDGE_TEST_SECRET", "via-default")
	var none *secret.Resolver
	if s, err := none.Resolve(ctx, "x", "env://SCIMBRIDGE_TEST_SECRET", ""); err != nil || s.Reveal() != "via-default" {
		t.Fatalf("nil Resolver: Resolve(env://) = %q, %v", s.Reveal(), err)
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want secret.Ref
	}{
		{"aws-secretsmanager://prod/scim#token", secret.Ref{Scheme: "aws-secretsmanager", Name: "prod/scim", Key: "token"}},
		{"aws-secretsmanager://prod/scim?region=eu-west-1#token", secret.Ref{Scheme: "aws-secretsmanager", Name: "prod/scim", Key: "token", Region: "eu-west-1"}},
		{"aws-ssm:///a/b#k?region=us-east-2", secret.Ref{Scheme: "aws-ssm", Name: "/a/b", Key: "k", Region: "us-east-2"}},
		{"aws-ssm://arn:aws:ssm:ap-south-1:1:parameter/x", secret.Ref{Scheme: "aws-ssm", Name: "arn:aws:ssm:ap-south-1:1:parameter/x", Region: "ap-south-1"}},
		{"file:///run/secrets/a#b", secret.Ref{Scheme: "file", Name: "/run/secrets/a#b"}},
		{"env://TOKEN", secret.Ref{Scheme: "env", Name: "TOKEN"}},
	} {
		got, err := secret.ParseRef(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"https://x", "env://", "file://", "aws-ssm://", "aws-secretsmanager://arn:aws:secretsmanager::1:secret:x"} {
		if _, err := secret.ParseRef(bad); !errors.Is(err, secret.ErrBadRef) {
			t.Errorf("ParseRef(%q) error %v, want ErrBadRef", bad, err)
		}
	}
	if secret.IsRef("s3cr3t") || !secret.IsRef("env://X") {
		t.Error("IsRef")
	}
	// A reference formats as itself: it names a place, not a value.
	if got := fmt.Sprint(secret.Ref{Scheme: "aws-ssm", Name: "/p", Region: "eu-west-1"}); got != "aws-ssm:///p?region=eu-west-1" {
		t.Errorf("String() = %q", got)
	}
}

// TestAWSReferenceWithoutBackend: with no AWS backend wired in (this package imports no AWS SDK;
// awssecret provides it), an aws-secretsmanager:// or aws-ssm:// reference is an error that names
// the field, the reference and the missing backend, never a literal or an empty secret.
func TestAWSReferenceWithoutBackend(t *testing.T) {
	for _, r := range []*secret.Resolver{nil, secret.NewResolver(secret.ResolverOptions{})} {
		for _, ref := range []string{"aws-secretsmanager://prod/scim#token", "aws-ssm:///scimbridge/ldap/bind_password"} {
			s, err := r.Resolve(context.Background(), "target.token", secret.Secret(ref), "")
			if err == nil {
				t.Fatalf("Resolve(%q) with no backend: got %q, nil; want an error", ref, s.Reveal())
			}
			if !errors.Is(err, secret.ErrNoBackend) {
				t.Errorf("Resolve(%q) with no backend: got error %v, want ErrNoBackend", ref, err)
			}
			if !strings.HasPrefix(err.Error(), "target.token: "+ref+": ") {
				t.Errorf("Resolve(%q) with no backend: got error %q, want it to start with the field and the reference", ref, err)
			}
		}
	}
}
