package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/google"
)

// guideFiles lists the guides in deploy/docs and the examples' comments, the texts a new user
// follows.
func guideFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join("..", "..", "deploy", "docs", "*.md"))
	if err != nil || len(docs) < 7 {
		t.Fatalf("found %d guides in deploy/docs (%v)", len(docs), err)
	}
	return docs
}

// snippet is a piece of code in a guide: a code block line or an inline code span.
type snippet struct {
	file  string
	line  int
	text  string
	lang  string // the code block's language, "" for inline code
	block string // the whole code block, for YAML
}

var inlineCode = regexp.MustCompile("`([^`]+)`")

// snippets returns the code of a Markdown file: each line of each fenced block and each inline
// code span of the prose.
func snippets(t *testing.T, file string) []snippet {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []snippet
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if lang, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), "```"); ok {
			start := i + 1
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
			}
			block := strings.Join(lines[start:min(i, len(lines))], "\n")
			for j, l := range lines[start:min(i, len(lines))] {
				out = append(out, snippet{file, start + j + 1, l, lang, block})
			}
			continue
		}
		for _, m := range inlineCode.FindAllStringSubmatch(lines[i], -1) {
			out = append(out, snippet{file, i + 1, m[1], "", ""})
		}
	}
	return out
}

// commandAt finds "scimbridge <words> <flags>" in s and checks the words name a command and the
// flags are that command's; it returns the problems.
var invocation = regexp.MustCompile(`(?:^|[\s/(])scimbridge\s+(\S.*)$`)

func checkInvocation(root *cobra.Command, s string) []string {
	m := invocation.FindStringSubmatch(s)
	if m == nil {
		return nil
	}
	var words []string
	for _, w := range strings.Fields(m[1]) {
		if strings.ContainsAny(w, "|;&>#`") || w == "\\" {
			break
		}
		words = append(words, w)
	}
	cmd := root
	i := 0
	for ; i < len(words); i++ {
		var next *cobra.Command
		for _, c := range cmd.Commands() {
			if c.Name() == words[i] || slices.Contains(c.Aliases, words[i]) {
				next = c
			}
		}
		if next == nil {
			break
		}
		cmd = next
	}
	if cmd == root {
		if len(words) == 0 || strings.HasPrefix(words[0], "-") || strings.ToUpper(words[0]) == words[0] {
			return nil // "scimbridge --help", or prose such as "scimbridge ACTION"
		}
		return []string{"no command " + words[0]}
	}
	var problems []string
	for _, w := range words[i:] {
		if !strings.HasPrefix(w, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
		name = strings.TrimRight(name, ",.)")
		var f any
		if strings.HasPrefix(w, "--") {
			if fl := cmd.Flags().Lookup(name); fl != nil {
				f = fl
			} else if fl := cmd.InheritedFlags().Lookup(name); fl != nil {
				f = fl
			}
		} else if len(name) == 1 {
			if fl := cmd.Flags().ShorthandLookup(name); fl != nil {
				f = fl
			} else if fl := cmd.InheritedFlags().ShorthandLookup(name); fl != nil {
				f = fl
			}
		}
		if f == nil && name != "help" && name != "h" {
			problems = append(problems, cmd.CommandPath()+" has no flag "+w)
		}
	}
	return problems
}

// configKey matches an inline code span that names a config key (with a value, perhaps).
var configKey = regexp.MustCompile(`^((?:source|target|sync|state|log|service|mapping|scope|access|data_dir)(?:\.[A-Za-z_*]+)*)(?::\s.*|=.*)?$`)

// knownKey reports whether k is a config key, a section of keys, or an element of a map or list
// key (mapping.user.email).
func knownKey(vars []config.EnvVar, k string) bool {
	for _, v := range vars {
		switch {
		case v.Key == k, strings.HasPrefix(v.Key, k+"."):
			return true
		case (v.Type == "list" || v.Type == "map" || strings.HasPrefix(v.Type, "map") || strings.HasPrefix(v.Type, "list")) && strings.HasPrefix(k, v.Key+"."):
			return true
		case strings.HasSuffix(k, ".*") && strings.HasPrefix(v.Key, strings.TrimSuffix(k, "*")):
			return true
		case strings.HasSuffix(k, "*") && strings.HasPrefix(v.Key, strings.TrimSuffix(k, "*")):
			return true
		}
	}
	return false
}

// TestGuidesNameRealCommandsAndKeys: every `scimbridge ...` command a guide shows exists with
// the flags it uses, every config key it names exists, and every YAML block that is a piece of
// a config decodes strictly (unknown keys and wrong types fail).
func TestGuidesNameRealCommandsAndKeys(t *testing.T) {
	root := newRootCmd()
	vars := config.EnvVars()
	var commands, keys, blocks int
	seenBlock := map[string]bool{}
	for _, file := range guideFiles(t) {
		for _, s := range snippets(t, file) {
			where := filepath.Base(s.file) + ":" + strconv.Itoa(s.line)
			// A ```text block is a program's output ("... not managed by scimbridge left alone"), not commands.
			if invocation.MatchString(s.text) && s.lang != "text" && !(s.lang != "" && strings.HasPrefix(strings.TrimSpace(s.text), "#")) {
				commands++
				for _, p := range checkInvocation(root, s.text) {
					t.Errorf("%s: %q: %s", where, s.text, p)
				}
			}
			if s.lang == "" {
				if m := configKey.FindStringSubmatch(s.text); m != nil && strings.Contains(m[1], ".") {
					keys++
					if !knownKey(vars, m[1]) {
						t.Errorf("%s: %q names no config key", where, m[1])
					}
				}
			}
			if s.lang == "yaml" && !seenBlock[s.file+s.block] {
				seenBlock[s.file+s.block] = true
				first, _, _ := strings.Cut(strings.TrimLeft(s.block, "#\n "), ":")
				if !configKey.MatchString(first) {
					continue // not a scimbridge config (Helm values, a directory file)
				}
				blocks++
				c, err := config.Parse([]byte(s.block), func(string) (string, bool) { return "x", true })
				if err != nil {
					t.Errorf("%s: a config block does not decode:\n%v\n%s", where, err, s.block)
					continue
				}
				// Its mapping and scope expressions compile, against the flavour it names.
				flavour := google.Flavour()
				if c.Source.LDAP != nil {
					flavour = c.Source.LDAP.Flavour()
				}
				if _, err := connectors.Compile(flavour, c.Mapping, c.Scope); err != nil {
					t.Errorf("%s: the mapping or scope of a config block does not compile: %v", where, err)
				}
			}
		}
	}
	// The default mapping tables of ldap.md are connectors/DEFAULTS.md's.
	defaults, err := os.ReadFile(filepath.Join("..", "..", "connectors", "DEFAULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	ldapGuide, err := os.ReadFile(filepath.Join("..", "..", "deploy", "docs", "ldap.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, flavour := range []string{"active_directory", "openldap"} {
		section := string(defaults)[strings.Index(string(defaults), "## "+flavour):]
		for _, row := range strings.Split(section, "\n")[1:] {
			if strings.HasPrefix(row, "## ") {
				break
			}
			if strings.HasPrefix(row, "| user") || strings.HasPrefix(row, "| group") {
				if !strings.Contains(string(ldapGuide), row+"\n") {
					t.Errorf("ldap.md lacks the %s default %s (connectors/DEFAULTS.md changed?)", flavour, row)
				}
			}
		}
	}
	// The commands in the examples' comments, too.
	examples, _ := filepath.Glob(filepath.Join("..", "..", "deploy", "examples", "*.yaml"))
	for _, f := range examples {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(string(b), "\n") {
			// Commands are the indented lines of a comment ("#   scimbridge check ..."), not its prose.
			if text, ok := strings.CutPrefix(strings.TrimSpace(l), "#"); ok && strings.HasPrefix(text, "  ") && invocation.MatchString(text) {
				commands++
				for _, p := range checkInvocation(root, text) {
					t.Errorf("%s:%d: %q: %s", filepath.Base(f), i+1, l, p)
				}
			}
		}
	}
	t.Logf("checked %d commands, %d keys, %d config blocks", commands, keys, blocks)
	if commands < 20 || keys < 40 || blocks < 8 {
		t.Errorf("checked %d commands, %d keys, %d config blocks: the guides hold more than that", commands, keys, blocks)
	}
}

// TestGuideCheckerCatchesMistakes: the checks above fail on a wrong command, flag or key.
func TestGuideCheckerCatchesMistakes(t *testing.T) {
	root := newRootCmd()
	for _, bad := range []string{"scimbridge synk --config x", "scimbridge sync --dryrun", "scimbridge state unlock --forced", "scimbridge mapping test --idd x"} {
		if len(checkInvocation(root, bad)) == 0 {
			t.Errorf("%q passed the command check", bad)
		}
	}
	for _, good := range []string{"scimbridge sync --dry-run --config c.yaml", "go run ./cmd/scimbridge check -c x", "scimbridge state unlock --force", "scimbridge mapping defaults --flavour google"} {
		if p := checkInvocation(root, good); len(p) > 0 {
			t.Errorf("%q: %v", good, p)
		}
	}
	vars := config.EnvVars()
	for k, want := range map[string]bool{"sync.adopt": true, "sync.adopts": false, "source.google.subject": true,
		"target.token_files": false, "mapping.user.email": true, "sync.guards.allow_*": true, "source.google": true} {
		if got := knownKey(vars, k); got != want {
			t.Errorf("knownKey(%q) = %v, want %v", k, got, want)
		}
	}
}
