package config

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// FuzzParse decodes arbitrary config text, with ${VAR} expanded to an arbitrary value: it must
// never panic, Validate must not panic on what Parse accepts, the rendered config always redacts
// the token, and a token written as ${T} decodes to exactly the value of T.
// Run: go test -fuzz FuzzParse -fuzztime 2m ./cmd/scimbridge/internal/config/
func FuzzParse(f *testing.F) {
	f.Add("source: {type: file, file: {path: d.yaml}}\ntarget: {scim_url: https://x/scim/v2, token: ${T}}\n", "s3cr3t-token-value")
	f.Add("target:\n  token: ${T}\n  timeout: ${T}\n", "30s")
	f.Add("target: {token: \"${T}\"}\n", "a\"b\\c\n  injected: true")
	f.Add("target: {token: '${T}'}\n", "x' , concurrency: 999 , y: '")
	f.Add("log: {level: ${T:-info}}\n", "")
	f.Add("sync:\n  guards: {max_deletes: ${T}}\n", "}\nsource: {type: google}")
	f.Add("${T}: 1\n", "target")
	f.Add("target: {token: $${T}}\n", "v")
	f.Add("a: &a [*a, *a]\nb: *a\n", "")
	f.Fuzz(func(t *testing.T, text, value string) {
		lookup := func(name string) (string, bool) {
			if name == "T" {
				return value, true
			}
			return "", false
		}
		c, err := Parse([]byte(text), lookup)
		if err != nil {
			return
		}
		_ = c.Validate()
		out, err := yaml.Marshal(c)
		if err != nil {
			return
		}
		if c.Target.Token.IsSet() && !strings.Contains(string(out), "token: <secret>") {
			t.Errorf("the rendered config does not redact the token:\n%s", out)
		}
		// A lone `token: ${T}` line decodes to exactly the value.
		if text == "target:\n  token: ${T}\n" && utf8.ValidString(value) && !strings.ContainsAny(value, "\x00") &&
			c.Target.Token.Reveal() != value && c.Target.Token.Reveal() != strings.TrimSpace(value) {
			t.Errorf("token = %q, want %q", c.Target.Token.Reveal(), value)
		}
	})
}

// FuzzExpandedValueKeepsStructure: whatever the value of ${T}, it lands in the token and nowhere
// else (no key can be injected through it).
func FuzzExpandedValueKeepsStructure(f *testing.F) {
	for _, v := range []string{"plain", "a\"b", "x\n  concurrency: 999", "'; timeout: 1s", "${OTHER}", "$$", "#comment", "{a: b}", "- list", "\\", "\t\r", "\x00"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, value string) {
		text := "source: {type: file, file: {path: d.yaml}}\ntarget:\n  scim_url: https://x/scim/v2\n  token: ${T}\n  concurrency: 4\n"
		c, err := Parse([]byte(text), func(n string) (string, bool) { return value, n == "T" })
		if err != nil {
			if strings.Contains(err.Error(), value) && len(value) >= 4 {
				t.Errorf("error quotes the secret value: %v", err)
			}
			return
		}
		if c.Target.Token.Reveal() != strings.TrimSpace(value) && c.Target.Token.Reveal() != value {
			t.Errorf("token = %q, want %q", c.Target.Token.Reveal(), value)
		}
		if c.Target.Concurrency != 4 || c.Target.SCIMURL != "https://x/scim/v2" || c.Target.Timeout != Duration(30*time.Second) {
			t.Errorf("the value changed other keys: %+v", c.Target)
		}
	})
}
