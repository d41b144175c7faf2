package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// TestNewSecretsReadsAWSReferences: the binary's resolver has the AWS backends wired in
// (package secret carries none), so aws-ssm:// and aws-secretsmanager:// references resolve
// through the AWS SDK with the environment's configuration.
func TestNewSecretsReadsAWSReferences(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name, SecretId string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch r.Header.Get("X-Amz-Target") {
		case "AmazonSSM.GetParameter":
			_ = json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{"Name": in.Name, "Type": "SecureString", "Value": "ssm:" + in.Name}})
		case "secretsmanager.GetSecretValue":
			_ = json.NewEncoder(w).Encode(map[string]any{"Name": in.SecretId, "SecretString": `{"token":"sm:` + in.SecretId + `"}`})
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"UnknownOperationException"}`)
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": srv.URL, "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
		"AWS_ENDPOINT_URL_SSM": "", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "",
	} {
		t.Setenv(k, v)
	}
	secrets := newSecrets(slog.New(slog.DiscardHandler))
	for ref, want := range map[string]string{
		"aws-ssm:///scimbridge/ldap/bind_password":   "ssm:/scimbridge/ldap/bind_password",
		"aws-secretsmanager://scimbridge/scim#token": "sm:scimbridge/scim",
	} {
		s, err := secrets.Value(t.Context(), ref)
		if err != nil {
			t.Fatalf("newSecrets().Value(%q): got error %v, want %q", ref, err, want)
		}
		if s.Reveal() != want {
			t.Errorf("newSecrets().Value(%q): got %q, want %q", ref, s.Reveal(), want)
		}
	}
}
