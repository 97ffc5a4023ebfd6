package sim

import (
	"strings"
	"testing"
)

// The embedded corpora parse: New and Shapes would fail for every user of
// the simulator if they did not.
func TestTheEmbeddedCorporaParse(t *testing.T) {
	shapes, err := Shapes()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range shapes {
		if s.Template == "" || s.Weight < 0 || names[s.Name] {
			t.Errorf("shape %+v: want a template, a weight and a name of its own", s)
		}
		names[s.Name] = true
	}
	if !names["tagged-lines"] || !names["pt-tagged-lines"] {
		t.Fatalf("shapes %v, want English and Portuguese ones", names)
	}
}

// A corpus that does not parse is an error that says where, not a panic.
func TestABrokenCorpusIsAnError(t *testing.T) {
	for _, text := range []string{"== lonely\nbody", "== shape heavy\nbody", "# only a header"} {
		if _, err := parseCorpus("broken.txt", text); err == nil || !strings.Contains(err.Error(), "broken.txt") {
			t.Errorf("parseCorpus(%q) = %v, want an error naming the file", text, err)
		}
	}
}
