package file

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSplitReadsLikeWhole checks that reading a file record by record gives exactly what reading
// it whole gives: the same directory, or the same problems with the same line numbers.
func TestSplitReadsLikeWhole(t *testing.T) {
	files := map[string]string{}
	for _, glob := range []string{"testdata/*.yaml", "../../deploy/examples/directory.yaml"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files[p] = string(b)
		}
	}
	files["problems"] = `# comment
users:
  - id: u1
    userName: a@example.com
    givenName: A
    colour: blue

  - id: u1
    userName: A@example.com
  - just a string
  -
    id: u3
    userName: c@example.com
    attributes:
      tags: [x, y]
      note: |
        two
        lines
groups:
- id: g1
  name: G
  members: [u1, u3]
- id: g2
  name: g
`
	files["null users"] = "users:\ngroups:\n  - {id: g1, name: G}\n"
	files["unknown key"] = "users:\n  - id: u1\n    userName: x@example.com\nsettings:\n  - a\n"
	for name, text := range files {
		t.Run(name, func(t *testing.T) {
			r, ok := parseSplit([]byte(text), nil)
			sd, sw, serr := r.dir, r.warnings, r.err
			if !ok {
				t.Skip("not plainly laid out: read whole")
			}
			wd, ww, werr := parseWhole([]byte(text))
			if diff := cmp.Diff(fmt.Sprint(werr), fmt.Sprint(serr)); diff != "" {
				t.Errorf("errors (-whole +split):\n%s", diff)
			}
			if diff := cmp.Diff(ww, sw); diff != "" {
				t.Errorf("warnings (-whole +split):\n%s", diff)
			}
			if diff := cmp.Diff(wd, sd); diff != "" {
				t.Errorf("directory (-whole +split):\n%s", diff)
			}
		})
	}
}

func TestSplitGivesUpOnWhatItCannotCut(t *testing.T) {
	for _, text := range []string{
		"users: []\n",
		"---\nusers:\n  - id: u1\n",
		"users:\n  - &a {id: u1}\ngroups:\n  - *a\n",
		"users:\n\t- id: u1\n",
		"users:\n  - id: u1\n userName: x\n",
		"{users: [{id: u1}]}\n",
		"users:\n  - id: \"u1\n",
	} {
		if _, ok := parseSplit([]byte(text), nil); ok {
			t.Errorf("split accepted %q", text)
		}
	}
	// And Parse still reads those it can read.
	if d, err := Parse([]byte("users: []\ngroups: [{id: g, name: G}]\n")); err != nil || len(d.Groups) != 1 {
		t.Errorf("Parse = %v, %v", d, err)
	}
	if !strings.Contains(fmt.Sprint(Parse([]byte("users:\n  - id: \"u1\n"))), "not valid YAML") {
		t.Error("a broken file must give the YAML error of the whole read")
	}
}
