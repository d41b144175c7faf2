package connectors

import (
	"errors"
	"strings"
	"testing"
)

var sampleEntry = Entry{
	ID:   "u-1",
	Keys: []string{"CN=Ada,OU=People,DC=example,DC=com", "ada"},
	Attributes: map[string][]string{
		"mail":        {"Ada@Example.com", "ada.alias@example.com"},
		"givenName":   {" Ada "},
		"sn":          {"Lovelace"},
		"memberOf":    {"CN=Admins,DC=example,DC=com", "CN=Eng,DC=example,DC=com"},
		"empty":       {},
		"phone":       {"+44 20 7946 0000"},
		"description": {"svc-backup"},
	},
}

func evalString(t *testing.T, src string, e Entry) (string, error) {
	t.Helper()
	p, err := compileExpression("test", Expr(src), kindString)
	if err != nil {
		return "", err
	}
	ev := newEvaluator()
	ev.env.set(&e)
	return p.runString(ev)
}

func TestFunctions(t *testing.T) {
	for _, tc := range []struct {
		name, expr, want string
	}{
		{"attr first value", `attr("mail")`, "Ada@Example.com"},
		{"attr ignores case of name", `attr("MAIL")`, "Ada@Example.com"},
		{"attr missing", `attr("nope")`, ""},
		{"attr empty list", `attr("empty")`, ""},
		{"values", `join(values("Mail"), "|")`, "Ada@Example.com|ada.alias@example.com"},
		{"values missing", `join(values("nope"), "|")`, ""},
		{"first of list", `first(values("memberOf"))`, "CN=Admins,DC=example,DC=com"},
		{"first of empty", `first(values("empty"))`, ""},
		{"first of string", `first("x")`, "x"},
		{"first of any list", `first(["a", "b"])`, "a"},
		{"lower", `lower(attr("mail"))`, "ada@example.com"},
		{"upper", `upper(attr("sn"))`, "LOVELACE"},
		{"trim", `trim(attr("givenName"))`, "Ada"},
		{"default keeps value", `default(attr("sn"), "x")`, "Lovelace"},
		{"default when empty", `default(attr("nope"), "fallback")`, "fallback"},
		{"default when blank", `default(" ", "fallback")`, "fallback"},
		{"default of list", `default(values("mail"), "x")`, "Ada@Example.com"},
		{"default of empty list", `default(values("nope"), "x")`, "x"},
		{"join", `join(["a", "b", "c"], "-")`, "a-b-c"},
		{"split", `join(split("a,b,c", ","), "+")`, "a+b+c"},
		{"split empty", `len(split("", ","))`, "0"},
		{"split index", `split(attr("mail"), "@")[1]`, "Example.com"},
		{"replace", `replace(attr("phone"), " ", "")`, "+442079460000"},
		{"regexMatch true", `regexMatch(attr("description"), "^svc-") ? "service" : "person"`, "service"},
		{"regexMatch false", `regexMatch(attr("sn"), "^svc-") ? "service" : "person"`, "person"},
		{"regexMatch dynamic pattern", `regexMatch(attr("sn"), "^" + "Love") ? "y" : "n"`, "y"},
		{"regexReplace", `regexReplace(attr("mail"), "^([^@]+)@.*$", "${1}")`, "Ada"},
		{"hasValue ignores case", `hasValue("memberOf", "cn=admins,dc=example,dc=com") ? "admin" : "user"`, "admin"},
		{"hasValue false", `hasValue("memberOf", "CN=Nope") ? "admin" : "user"`, "user"},
		{"id", `id`, "u-1"},
		{"keys", `keys[1]`, "ada"},
		{"attrs map", `attrs.sn`, "Lovelace"},
		{"attrs index", `attrs["sn"][0]`, "Lovelace"},
		{"concatenation", `trim(attr("givenName")) + " " + attr("sn")`, "Ada Lovelace"},
		{"conditional", `attr("nope") == "" ? "none" : "some"`, "none"},
		{"nil coalescing", `attrs.nope?.[0] ?? "dflt"`, "dflt"},
		{"builtin hasPrefix", `hasPrefix(attr("description"), "svc") ? "y" : "n"`, "y"},
		{"builtin filter", `join(filter(values("mail"), {# contains "alias"}), ",")`, "ada.alias@example.com"},
		{"number result", `len(values("mail"))`, "2"},
		{"bool result", `attr("sn") == "Lovelace"`, "true"},
		{"in operator", `attr("sn") in ["Lovelace", "Babbage"] ? "y" : "n"`, "y"},
		{"matches operator", `attr("sn") matches "^L" ? "y" : "n"`, "y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := evalString(t, tc.expr, sampleEntry)
			if err != nil {
				t.Fatalf("%s: %v", tc.expr, err)
			}
			if got != tc.want {
				t.Errorf("%s = %q, want %q", tc.expr, got, tc.want)
			}
		})
	}
}

func TestFastAttr(t *testing.T) {
	for _, tc := range []struct {
		expr string
		fast bool
	}{
		{`attr("mail")`, true},
		{`attr("mail") + ""`, false},
		{`lower(attr("mail"))`, false},
	} {
		p, err := compileExpression("k", Expr(tc.expr), kindString)
		if err != nil {
			t.Fatal(err)
		}
		if p.fast != tc.fast {
			t.Errorf("%s: fast = %v, want %v", tc.expr, p.fast, tc.fast)
		}
	}
}

func TestCompileExpressionErrors(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		kind       resultKind
		want       string
	}{
		{"syntax", `attr("x"`, kindString, "unexpected token"},
		{"unknown function", `nope("x")`, kindString, "unknown name nope"},
		{"unknown variable", `mail`, kindString, "unknown name mail"},
		{"wrong argument type", `lower(values("x"))`, kindString, "cannot use []string as argument"},
		{"wrong argument count", `attr("a", "b")`, kindString, "too many arguments"},
		{"bad literal regex", `regexMatch(id, "(")`, kindString, "missing closing )"},
		{"bad literal regex in replace", `regexReplace(id, "[", "")`, kindString, "missing closing ]"},
		{"map result", `attrs`, kindString, "must give a string"},
		{"string where bool", `1 + 2`, kindBool, "must give a bool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileExpression("mapping.user.title", Expression{Text: tc.expr, Line: 12}, tc.kind)
			if err == nil {
				t.Fatalf("%s compiled; want an error", tc.expr)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "mapping.user.title (line 12): ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error = %q, want the key, line and %q", msg, tc.want)
			}
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	for _, tc := range []struct{ name, expr, want string }{
		{"index out of range", `split(attr("nope"), ",")[3]`, "out of range"},
		{"dynamic bad regex", `regexMatch(id, "(" + attr("sn")) ? "a" : "b"`, "regular expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := evalString(t, tc.expr, sampleEntry)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: error %v, want one containing %q", tc.expr, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines", err)
			}
		})
	}
}

func TestRunBool(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{`true`, true, false},
		{`attr("sn") == "Lovelace"`, true, false},
		{`"false"`, false, false},
		{`"TRUE"`, true, false},
		{`attr("sn")`, false, true},
		{`attrs.nope?.[0]`, false, true},
	} {
		p, err := compileExpression("k", Expr(tc.expr), kindBool)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		ev := newEvaluator()
		ev.env.set(&sampleEntry)
		got, err := p.runBool(ev)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s = %v, %v; want %v, error %v", tc.expr, got, err, tc.want, tc.wantErr)
		}
	}
}
