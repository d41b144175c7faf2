package emulator_test

import (
	"testing"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// TestFilterStringEscapes: a filter's string literal is a JSON string, so \" and \\ stand for a
// quote and a backslash. Found by the hostile-input suite (issue 9): the parser hands the literal
// over still escaped, so a value holding " or \ never matched and a create whose answer was lost
// could not be found again by its externalId.
func TestFilterStringEscapes(t *testing.T) {
	_, c := start(t, emulator.Options{})
	for _, name := range []string{`quote"d`, `back\slash`, `both\"x`, `plain`} {
		c.createUser(name)
	}
	cases := []struct {
		filter string
		want   int
	}{
		{`userName eq "quote\"d"`, 1},
		{`externalId eq "ext-back\\slash"`, 1},
		{`userName eq "both\\\"x"`, 1},
		{`userName eq "plain"`, 1},
		{`userName eq "pl\u0061in"`, 1},
		{`userName eq "x\" or userName pr \""`, 0}, // a quote inside a value does not end it
		{`userName eq "back\slash"`, -400},         // \s is no JSON escape
	}
	for _, tc := range cases {
		r := c.do("GET", "/Users"+q(tc.filter), nil)
		if tc.want < 0 {
			if r.status != -tc.want {
				t.Errorf("%s: status %d, want %d", tc.filter, r.status, -tc.want)
			}
			continue
		}
		if r.status != 200 || len(r.resources()) != tc.want {
			t.Errorf("%s: status %d, %d results, want %d; %s", tc.filter, r.status, len(r.resources()), tc.want, r.raw)
		}
	}
}
