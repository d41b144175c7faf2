package config

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// parseErrorKinds are the errors Parse documents: the YAML library's syntax errors ("yaml: ..."),
// and the shape and expansion errors, each naming its line: an unknown key, a value of the wrong
// type or form, an unclosed ${, ${} without a name, an unset variable, a variable that is not
// UTF-8, ${...} in a multi-line value. Anything else (a bare decoder message, a message without its line) is a new
// kind that must be documented before this list learns it.
var parseErrorKinds = []*regexp.Regexp{
	regexp.MustCompile(`^yaml: `),
	regexp.MustCompile(`(?s)^line \d+: field .+ not found in type \S+$`),
	regexp.MustCompile(`(?s)^line \d+: cannot unmarshal .+ into .+$`),
	regexp.MustCompile(`(?s)^line \d+: mapping key ".*" already defined at line \d+$`),
	regexp.MustCompile(`^line \d+: unclosed \$\{ in value$`),
	regexp.MustCompile(`(?s)^line \d+: environment variable .+ is (not set|not valid UTF-8)$`),
	regexp.MustCompile(`^line \d+: \$\{\} names no environment variable$`),
	regexp.MustCompile(`^line \d+: \$\{\.\.\.\} is only expanded in single-line values$`),
	regexp.MustCompile(`(?s)^line \d+: (.+: )?".*" is not a duration \(such as 30s or 24h\)$`),
	regexp.MustCompile(`(?s)^line \d+: (.+: )?an expression must be a string, not a \w+$`),
	regexp.MustCompile(`(?s)^line \d+: .+ must be one of .+$`),
	// The shape check's (shape.go): a key path, then what is wrong.
	regexp.MustCompile(`(?s)^line \d+: (.+: )?unknown key ".*"(; did you mean ".*"\?| \(known keys: [a-z_, ]+\))$`),
	regexp.MustCompile(`(?s)^line \d+: (.+: )?expected .+, not .+$`),
	regexp.MustCompile(`(?s)^line \d+: .+: \w+ must be "\w+" or "\w+", not ".*"$`),
}

// checkParseError fails unless every error joined in err is of a documented kind.
func checkParseError(t *testing.T, err error) {
	t.Helper()
	var leaves []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		leaves = append(leaves, e)
	}
	walk(err)
	for _, e := range leaves {
		known := false
		for _, k := range parseErrorKinds {
			known = known || k.MatchString(e.Error())
		}
		if !known {
			t.Errorf("Parse error of no documented kind: %q (%T)", e.Error(), e)
		}
	}
}

// exactToken is the config the exact-token property is checked on, whatever text is fuzzed.
const exactToken = "target:\n  token: ${T}\n"

// FuzzParse decodes arbitrary config text, with ${VAR} expanded to an arbitrary value: it must
// never panic, every error it returns is of a documented kind, Validate must not panic on what
// Parse accepts, the rendered config always redacts the token, and a token written as ${T}
// decodes to exactly the value of T (checked on exactToken for every value fuzzed).
// Run: go test -fuzz FuzzParse -fuzztime 2m ./cmd/scimbridge/internal/config/
func FuzzParse(f *testing.F) {
	f.Add("source: {type: file, file: {path: d.yaml}}\ntarget: {scim_url: https://x/scim/v2, token: ${T}}\n", "s3cr3t-token-value")
	f.Add(exactToken, "  spaces around, \"quotes\", \\ and a # hash  ")
	f.Add(exactToken, "tab\tnewline\nbell\a nul\x00 é 🎉 \u2028")
	// Words that looked plain but broke the document or lost the value when written plain.
	for _, v := range []string{"a:", "-", "@x", "null", "~"} {
		f.Add(exactToken, v)
	}
	f.Add("target:\n  token: ${T}\n  timeout: ${T}\n", "30s")
	f.Add("target: {token: \"${T}\"}\n", "a\"b\\c\n  injected: true")
	f.Add("target: {token: '${T}'}\n", "x' , concurrency: 999 , y: '")
	f.Add("log: {level: ${T:-info}}\n", "")
	f.Add("sync:\n  guards: {max_deletes: ${T}}\n", "}\nsource: {type: google}")
	f.Add("${T}: 1\n", "target")
	f.Add("target: {token: $${T}}\n", "v")
	f.Add("a: &a [*a, *a]\nb: *a\n", "")
	f.Add("target: {timeout: ${U}, token: ${T\n", "v")
	f.Add("target:\n  timeout: 5 parsecs\n  concurrency: many\nsync: {policy: [a]}\nmapping: {user: {title: {a: b}}}\n", "")
	f.Add("target: {scim_url: 1}\ntarget: {}\n", "")
	f.Fuzz(func(t *testing.T, text, value string) {
		lookup := func(name string) (string, bool) {
			if name == "T" {
				return value, true
			}
			return "", false
		}
		// The exact-token property, for this value.
		if utf8.ValidString(value) {
			c, err := Parse([]byte(exactToken), lookup)
			if err != nil {
				t.Errorf("Parse of a lone ${T} token failed for %q: %v", value, err)
			} else if got := c.Target.Token.Reveal(); got != value {
				t.Errorf("token = %q, want %q", got, value)
			}
		}
		c, err := Parse([]byte(text), lookup)
		if err != nil {
			checkParseError(t, err)
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
