package config_test

import (
	"testing"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/router"
)

// NOESIS_STRUCTURED sets every target's structured answers, then a target's
// own; the default is auto; anything else is refused at start-up.
func TestStructuredPerTarget(t *testing.T) {
	cases := []struct {
		value string
		want  map[string]string // target name -> Target.Structured
		bad   bool
	}{
		{value: "", want: map[string]string{"sim:" + router.DefaultReasoningModel: "auto", "sim:" + router.DefaultFastModel: "auto"}},
		{value: "auto", want: map[string]string{"sim:" + router.DefaultReasoningModel: "auto"}},
		{value: "off", want: map[string]string{"sim:" + router.DefaultReasoningModel: "off", "sim:" + router.DefaultDeepModel: "off"}},
		{value: "off, sim:" + router.DefaultReasoningModel + "=ON", want: map[string]string{"sim:" + router.DefaultReasoningModel: "on", "sim:" + router.DefaultFastModel: "off"}},
		{value: "sometimes", bad: true},
		{value: router.DefaultReasoningModel + "=on", bad: true}, // no provider
		{value: "sim:m=maybe", bad: true},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.Structured = c.value
			err := cfg.Validate()
			if c.bad {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, tg := range cfg.Router("http://127.0.0.1:1/v1").Targets {
				got[tg.Name] = tg.Structured
			}
			for name, mode := range c.want {
				if got[name] != mode {
					t.Errorf("%s: %q, want %q (all: %v)", name, got[name], mode, got)
				}
			}
		})
	}
}
