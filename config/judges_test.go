package config_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/pipeline"
)

// judgesOf validates a config with NOESIS_JUDGES set to list and returns its judges.
func judgesOf(t *testing.T, list string) ([]pipeline.Judge, error) {
	t.Helper()
	c := config.Defaults()
	c.Judges = list
	c.Provider = "sim"
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c.Tribunal().Judges, nil
}

// NOESIS_JUDGES is merged onto the origin's judges by name: an entry changes
// only what it gives, a new name adds a judge, "remove" takes one away.
func TestJudgesMergeByName(t *testing.T) {
	def := pipeline.DefaultJudges()
	veritas, sophia, dike := def[0], def[1], def[2]
	athena := pipeline.Judge{Name: "ATHENA", Pillar: "prudence", Weight: 0.2, Charge: "Is it prudent?", Timeout: 20 * time.Second, Target: "sim:m1"}
	with := func(j pipeline.Judge, f func(*pipeline.Judge)) pipeline.Judge { f(&j); return j }
	cases := []struct {
		name, list string
		want       []pipeline.Judge
	}{
		{"none", ``, def},
		{"one field of one judge", `[{"name":"VERITAS","weight":0.5}]`,
			[]pipeline.Judge{with(veritas, func(j *pipeline.Judge) { j.Weight = 0.5 }), sophia, dike}},
		{"a judge by its plain name", `[{"name":"DIKE","target":"sim:m1","timeout":"3s"}]`,
			[]pipeline.Judge{veritas, sophia, with(dike, func(j *pipeline.Judge) { j.Target, j.Timeout = "sim:m1", 3*time.Second })}},
		{"a charge of one's own", `[{"name":"SOPHIA","charge":"Is it wise for a medical agent?"}]`,
			[]pipeline.Judge{veritas, with(sophia, func(j *pipeline.Judge) { j.Charge = "Is it wise for a medical agent?" }), dike}},
		{"a fourth judge", `[{"name":"ATHENA","pillar":"prudence","weight":0.2,"charge":"Is it prudent?","timeout":"20s","target":"sim:m1"}]`,
			[]pipeline.Judge{veritas, sophia, dike, athena}},
		{"a judge removed", `[{"name":"SOPHIA","remove":true}]`, []pipeline.Judge{veritas, dike}},
		{"the whole list replaced", `[{"name":"VERITAS","remove":true},{"name":"SOPHIA","remove":true},{"name":"DIKĒ","remove":true},
			{"name":"A","pillar":"p","weight":1,"charge":"c"},{"name":"B","pillar":"q","weight":2,"charge":"d"}]`,
			[]pipeline.Judge{{Name: "A", Pillar: "p", Weight: 1, Charge: "c"}, {Name: "B", Pillar: "q", Weight: 2, Charge: "d"}}},
		{"the earlier full form", `[{"name":"VERITAS","pillar":"truth","weight":0.35,"charge":"c1"},{"name":"SOPHIA","pillar":"wisdom","weight":0.25,"charge":"c2"},
			{"name":"DIKĒ","pillar":"justice","weight":0.25,"charge":"c3"},{"name":"ATHENA","pillar":"prudence","weight":0.15,"charge":"c4"}]`,
			[]pipeline.Judge{{Name: "VERITAS", Pillar: "truth", Weight: 0.35, Charge: "c1"}, {Name: "SOPHIA", Pillar: "wisdom", Weight: 0.25, Charge: "c2"},
				{Name: "DIKĒ", Pillar: "justice", Weight: 0.25, Charge: "c3"}, {Name: "ATHENA", Pillar: "prudence", Weight: 0.15, Charge: "c4"}}},
	}
	for _, c := range cases {
		got, err := judgesOf(t, c.list)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %d judges %+v, want %+v", c.name, len(got), got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: judge %d is %+v, want %+v", c.name, i, got[i], c.want[i])
			}
		}
	}
	if d := pipeline.DefaultJudges(); d[0].Weight != 0.40 || d[1].Name != "SOPHIA" {
		t.Errorf("merging changed the defaults: %+v", d)
	}
}

func TestJudgesAsData(t *testing.T) {
	bad := map[string]string{
		`not json`: "JSON list",
		`[{"name":"VERITAS","remove":true},{"name":"SOPHIA","remove":true}]`:             "at least two",
		`[{"name":"DIKE","weight":0.2},{"name":"DIKĒ","weight":0.3}]`:                    "twice",
		`[{"name":"VERITAS","weight":0}]`:                                                "positive weight",
		`[{"name":"VERITAS","weight":-1}]`:                                               "positive weight",
		`[{"name":"VERITAS","colour":"red"}]`:                                            "unknown field",
		`[{"name":"SOPHIA","timeout":"soon"}]`:                                           "not a duration",
		`[{"name":"SOPHIA","target":"sim"}]`:                                             "provider:model",
		`[{"name":"ATHENA","pillar":"prudence","weight":0.2}]`:                           "new judge",
		`[{"name":"ATHENA","remove":true}]`:                                              "no judge of that name",
		`[{"name":"SOPHIA","remove":true,"weight":0.3}]`:                                 "only the name",
		`[{"name":"two words","pillar":"p","weight":1,"charge":"c"}]`:                    "without spaces",
		`[{"pillar":"p","weight":1,"charge":"c"}]`:                                       "want a name",
		`[{"name":"A","pillar":"p","weight":1,"charge":"c"},{"name":"A","remove":true}]`: "twice",
	}
	for in, want := range bad {
		if _, err := judgesOf(t, in); err == nil || !strings.Contains(err.Error(), "NOESIS_JUDGES") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", in, err, want)
		}
	}
	c := config.Defaults()
	c.Judges = `[{"name":"A","pillar":"p","weight":1,"charge":"c","target":"sim:m1"}]`
	c.Provider = "sim"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tg := range c.Router("http://127.0.0.1:1/v1").Targets {
		found = found || tg.Name == "sim:m1"
	}
	if !found {
		t.Error("a judge's own target is not among the router's targets")
	}
}

// .env.example's NOESIS_JUDGES example reads, and keeps the origin's judges.
func TestEnvExampleJudgesKeepTheDefaults(t *testing.T) {
	example, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^# NOESIS_JUDGES='(.*)'$`).FindAllSubmatch(example, -1)
	if len(m) == 0 {
		t.Fatal(".env.example has no commented NOESIS_JUDGES='...' example")
	}
	for _, ex := range m {
		judges, err := judgesOf(t, string(ex[1]))
		if err != nil {
			t.Errorf("%s: %v", ex[1], err)
			continue
		}
		names := map[string]bool{}
		for _, j := range judges {
			names[j.Name] = true
		}
		if !names["VERITAS"] || !names["SOPHIA"] || !names["DIKĒ"] || len(judges) < 4 {
			t.Errorf("%s gives %+v: want the three judges and one more", ex[1], judges)
		}
	}
}

// docs/judges.md writes out every default judge's pillar, weight and charge.
func TestDocsWriteOutTheDefaultCharges(t *testing.T) {
	doc, err := os.ReadFile("../docs/judges.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range pipeline.DefaultJudges() {
		if !strings.Contains(string(doc), j.Charge) {
			t.Errorf("docs/judges.md does not write out %s's charge %q", j.Name, j.Charge)
		}
	}
}
