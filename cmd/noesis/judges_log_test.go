package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/router/sim"
)

// serve logs the judges in force at start-up: NOESIS_JUDGES merged onto the
// defaults by name, one line each with pillar, weight, share and target.
func TestStartUpLogsTheJudgesInForce(t *testing.T) {
	r := newRig(t, sim.Config{})
	r.cfg.Judges = `[{"name":"SOPHIA","remove":true},{"name":"DIKE","weight":0.4},
		{"name":"ATHENA","pillar":"prudence","weight":0.2,"charge":"Is the action prudent?","target":"sim:athena-model"}]`
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	runServiceLogging(t, r.cfg, &logs, zerolog.InfoLevel)
	type line struct {
		Judge, Pillar, Target, Message string
		Weight, Share                  float64
	}
	var got []line
	for _, l := range strings.Split(logs.String(), "\n") {
		var e line
		if json.Unmarshal([]byte(l), &e) == nil && e.Message == "judge in force" {
			got = append(got, e)
		}
	}
	want := []line{
		{Judge: "VERITAS", Pillar: "truth", Target: "REASONING chain", Weight: 0.4, Share: 0.4},
		{Judge: "DIKĒ", Pillar: "justice", Target: "REASONING chain", Weight: 0.4, Share: 0.4},
		{Judge: "ATHENA", Pillar: "prudence", Target: "sim:athena-model", Weight: 0.2, Share: 0.2},
	}
	if len(got) != len(want) {
		t.Fatalf("judges logged %+v, want %+v", got, want)
	}
	for i := range want {
		want[i].Message = "judge in force"
		if got[i] != want[i] {
			t.Errorf("judge %d logged %+v, want %+v", i, got[i], want[i])
		}
	}
}
