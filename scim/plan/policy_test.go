package plan

import "testing"

// TestPolicyMethods pins what each policy allows; the golden plans show the same in whole plans.
func TestPolicyMethods(t *testing.T) {
	for _, tc := range []struct {
		p                             Policy
		deprovisions, update, removes bool
	}{
		{PolicySync, true, true, true},
		{PolicyUpsertOnly, false, true, true},
		{PolicyCreateOnly, false, false, false},
	} {
		got := [3]bool{tc.p.Deprovisions(), tc.p.AllowsUpdate(), tc.p.AllowsRemove()}
		if want := [3]bool{tc.deprovisions, tc.update, tc.removes}; got != want {
			t.Errorf("%s: got Deprovisions, AllowsUpdate, AllowsRemove = %v, want %v", tc.p, got, want)
		}
	}
	m := &matcher{opts: Options{Policy: PolicyCreateOnly}}
	if got := [2]bool{m.mayUpdate(""), m.mayUpdate("external_id")}; got != [2]bool{false, true} {
		t.Errorf("create-only: got mayUpdate (not adopted, adopted) = %v, want [false true]", got)
	}
	for _, tc := range []struct {
		opts Options
		want bool
	}{
		{Options{Policy: PolicySync, Adopt: AdoptName, AdoptUnmatched: true}, true},
		{Options{Policy: PolicySync, Adopt: AdoptNone, AdoptUnmatched: true}, false},
		{Options{Policy: PolicyUpsertOnly, Adopt: AdoptExternalID, AdoptUnmatched: true}, false},
		{Options{Policy: PolicySync, Adopt: AdoptExternalID}, false},
	} {
		if got := (&matcher{opts: tc.opts}).adoptUnmatched(); got != tc.want {
			t.Errorf("adoptUnmatched with %+v: got %v, want %v", tc.opts, got, tc.want)
		}
	}
}
