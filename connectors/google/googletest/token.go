package googletest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
)

// JWTBearerGrant is the OAuth grant type of service-account token requests.
const JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// LegacyJWTBearer is the assertion_type of the legacy form of the grant (grant_type=assertion).
const LegacyJWTBearer = "http://oauth.net/grant_type/jwt/1.0/bearer"

// Claims are the claims of a verified token request assertion.
type Claims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

// TokenServer fakes Google's OAuth token endpoint (POST /token, JWT bearer grant, assertions
// verified as RS256 against the registered keys) and the IAM Credentials signJwt call
// (POST /v1/projects/-/serviceAccounts/{email}:signJwt, signed with the server's own key,
// which is registered for that email).
type TokenServer struct {
	// URL is the base URL; the token endpoint is URL + "/token".
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	keys     map[string]*rsa.PublicKey // by issuer (client_email)
	own      *rsa.PrivateKey
	claims   []Claims
	tokens   map[string]Claims
	signJWTs []string // service accounts asked to sign
	n        int
}

// NewTokenServer starts a token server with its own signing key.
func NewTokenServer() (*TokenServer, error) {
	own, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("googletest: generate key: %w", err)
	}
	t := &TokenServer{keys: map[string]*rsa.PublicKey{}, own: own, tokens: map[string]Claims{}}
	t.srv = httptest.NewServer(http.HandlerFunc(t.serve))
	t.URL = t.srv.URL
	return t, nil
}

// Close shuts the server down.
func (t *TokenServer) Close() { t.srv.Close() }

// Trust registers the public key that verifies assertions issued by email.
func (t *TokenServer) Trust(email string, key *rsa.PublicKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys[email] = key
}

// Assertions returns the claims of every verified assertion, in order.
func (t *TokenServer) Assertions() []Claims {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Claims(nil), t.claims...)
}

// SignJWTCalls returns the service accounts whose signJwt was called, in order.
func (t *TokenServer) SignJWTCalls() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.signJWTs...)
}

// ClaimsOf returns the claims behind an access token the server issued.
func (t *TokenServer) ClaimsOf(accessToken string) (Claims, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.tokens[accessToken]
	return c, ok
}

func (t *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/token":
		t.token(w, r)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/projects/-/serviceAccounts/") && strings.HasSuffix(r.URL.Path, ":signJwt"):
		email := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/projects/-/serviceAccounts/"), ":signJwt")
		t.signJWT(w, r, email)
	default:
		http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
	}
}

func (t *TokenServer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", "bad form")
		return
	}
	// Google also takes the legacy form of the same grant (impersonate's exchange uses it).
	f := r.PostForm
	if f.Get("grant_type") != JWTBearerGrant && (f.Get("grant_type") != "assertion" || f.Get("assertion_type") != LegacyJWTBearer) {
		oauthError(w, "unsupported_grant_type", "want a JWT bearer grant")
		return
	}
	claims, err := t.verify(r.PostForm.Get("assertion"))
	if err != nil {
		oauthError(w, "invalid_grant", err.Error())
		return
	}
	t.mu.Lock()
	t.n++
	tok := "fake-access-token-" + strconv.Itoa(t.n)
	t.claims = append(t.claims, claims)
	t.tokens[tok] = claims
	t.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

// verify checks an RS256 JWT against the key of its issuer and returns its claims.
func (t *TokenServer) verify(jwt string) (Claims, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return Claims{}, errors.New("assertion is not a JWT")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	var c Claims
	if err := decodeSegment(parts[0], &hdr); err != nil || hdr.Alg != "RS256" {
		return Claims{}, fmt.Errorf("assertion header: want alg RS256 (%v)", err)
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return Claims{}, fmt.Errorf("assertion claims: %w", err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Claims{}, fmt.Errorf("assertion signature: %w", err)
	}
	t.mu.Lock()
	key := t.keys[c.Iss]
	t.mu.Unlock()
	if key == nil {
		return Claims{}, fmt.Errorf("no key for issuer %q", c.Iss)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return Claims{}, fmt.Errorf("assertion signature: %w", err)
	}
	return c, nil
}

func (t *TokenServer) signJWT(w http.ResponseWriter, r *http.Request, email string) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		http.Error(w, `{"error":{"code":401,"message":"no credentials"}}`, http.StatusUnauthorized)
		return
	}
	var req struct {
		Payload string `json:"payload"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Payload == "" {
		http.Error(w, `{"error":{"code":400,"message":"no payload"}}`, http.StatusBadRequest)
		return
	}
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"own"}`))
	payload := base64.RawURLEncoding.EncodeToString([]byte(req.Payload))
	sum := sha256.Sum256([]byte(hdr + "." + payload))
	sig, err := rsa.SignPKCS1v15(rand.Reader, t.own, crypto.SHA256, sum[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	t.mu.Lock()
	t.keys[email] = &t.own.PublicKey
	t.signJWTs = append(t.signJWTs, email)
	t.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"keyId": "own", "signedJwt": hdr + "." + payload + "." + base64.RawURLEncoding.EncodeToString(sig)})
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func oauthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// ServiceAccountKey renders a service-account key file (JSON) for key and email whose
// token_uri is tokenURI.
func ServiceAccountKey(key *rsa.PrivateKey, email, tokenURI string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("googletest: marshal key: %w", err)
	}
	return json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "fake-project",
		"private_key_id": "k1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      "100000000000000000001",
		"token_uri":      tokenURI,
	})
}
