package secret_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

// TestCheckValueRefusesLookalikes: a mistyped reference is an error, never a literal secret; the
// error never shows the text after the scheme.
func TestCheckValueRefusesLookalikes(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  string // in the error; "" for a value that is accepted
	}{
		{value: "s3cr3t-Token_value"},
		{value: "Pass:word1"}, // a colon alone does not make a reference
		{value: "ab:cd:ef"},
		{value: "{\"type\":\"service_account\"}"},
		{value: "env://SCIM_TOKEN"},
		{value: "file:///run/secrets/scim-token"},
		{value: "aws-ssm:///prod/scim"},
		{value: "aws-secretsmanager://prod/scim#token"},
		{value: "file:/run/secret-path-xyz", want: "file references are written file:///absolute/path"},
		{value: "file://run/secret-path-xyz", want: "file:// needs an absolute path"},
		{value: "FILE:///run/secret-path-xyz", want: "file references are written file:///absolute/path"},
		{value: "env:SECRET_VAR_XYZ", want: "env references are written env://VARIABLE"},
		{value: "aws-secretmanager://prod/secret-path-xyz", want: `unknown scheme "aws-secretmanager"; did you mean aws-secretsmanager://NAME[#json-key]?`},
		{value: "aws-secretsmanger:prod/secret-path-xyz", want: `did you mean aws-secretsmanager://`},
		{value: "aws-sm:///secret-path-xyz", want: `did you mean aws-ssm:///path/to/parameter`},
		{value: "aws-secretsmanager://", want: "aws-secretsmanager:// needs a name"},
		{value: "vault://kv/secret-path-xyz", want: `the unknown scheme "vault"`},
		{value: "https://example.com/secret-path-xyz", want: `the unknown scheme "https"`},
		{value: "xq7:/secret-path-xyz", want: "with an unknown scheme (known: aws-secretsmanager://, aws-ssm://, file://, env://)"},
	} {
		err := secret.CheckValue(tc.value)
		if tc.want == "" {
			if err != nil {
				t.Errorf("CheckValue(%q) = %v, want nil", tc.value, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, secret.ErrBadRef) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckValue(%q) = %v, want ErrBadRef containing %q", tc.value, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "secret-path-xyz") || strings.Contains(err.Error(), "SECRET_VAR_XYZ") {
			t.Errorf("CheckValue(%q) = %v: shows the value", tc.value, err)
		}
		if tc.value == "xq7:/secret-path-xyz" && strings.Contains(err.Error(), "xq7") {
			t.Errorf("CheckValue(%q) = %v: shows a scheme that may be part of a secret", tc.value, err)
		}
	}
}

// TestResolveRefusesLookalikes: Resolve, the one path every secret takes, refuses a mistyped
// reference instead of using it as the secret, and points at the *_file sibling.
func TestResolveRefusesLookalikes(t *testing.T) {
	r := secret.NewResolver(secret.ResolverOptions{})
	s, err := r.Resolve(context.Background(), "target.token", "file:/run/secrets/scim-token", "")
	if err == nil {
		t.Fatalf("Resolve(file:/...) = %d bytes, nil; want an error", len(s.Reveal()))
	}
	for _, want := range []string{"target.token: ", "file:///absolute/path", "target.token_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !errors.Is(err, secret.ErrBadRef) {
		t.Errorf("error %v does not wrap ErrBadRef", err)
	}
}
