package sim

import (
	"fmt"
	"net/http"
	"sort"
)

// Faults are the shares of requests that fail, each in [0,1].
type Faults struct {
	ErrorRate     float64 `json:"error_rate"`      // HTTP 500
	RateLimitRate float64 `json:"rate_limit_rate"` // HTTP 429 with Retry-After
	HangRate      float64 `json:"hang_rate"`       // never answered
	MalformedRate float64 `json:"malformed_rate"`  // an answer in no readable shape
}

// Validate reports a rate outside [0,1].
func (f Faults) Validate() error {
	for name, r := range map[string]float64{"error_rate": f.ErrorRate, "rate_limit_rate": f.RateLimitRate, "hang_rate": f.HangRate, "malformed_rate": f.MalformedRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("%s: want a probability from 0 to 1, got %g", name, r)
		}
	}
	return nil
}

// Stats counts what the simulator saw.
type Stats struct {
	Requests    int64            `json:"requests"`
	Completions int64            `json:"completions"`
	Streams     int64            `json:"streams"`
	Faults      map[string]int64 `json:"faults"`
	Cancelled   int64            `json:"cancelled"`
	ColdStarts  int64            `json:"cold_starts"`
	PerModel    map[string]int64 `json:"per_model"`
	PerCaller   map[string]int64 `json:"per_caller"`
	// NoTemperature counts requests that left the temperature out, which a
	// provider reads as its own default, not as the 0 the caller may have meant.
	NoTemperature int64 `json:"no_temperature"`
	// PerSecond counts completion requests by the unix second they arrived in.
	PerSecond map[int64]int64 `json:"per_second"`
	// Invisible counts requests whose text held invisible format characters
	// (zero-width, bidi, tag characters), which noesis strips before sending.
	Invisible int64 `json:"invisible"`
	// Intents holds what each judge meant to answer, by "caller|task"; at
	// most MaxIntents, after which it starts again empty.
	Intents map[string]Intent `json:"intents,omitempty"`
	// Truncated counts answers cut by max_tokens (finish_reason "length").
	Truncated int64 `json:"truncated"`
	// Structured counts answers written in a response_format's schema
	// (FormatHonour); Faults["response_format"] the requests refused for one.
	Structured int64 `json:"structured"`
	// EarlyRetries counts calls that came back sooner than the Retry-After
	// of the 429 their request last got; MaxCallsPerRequest is the most calls
	// any one distinct request made.
	EarlyRetries       int64 `json:"early_retries"`
	MaxCallsPerRequest int64 `json:"max_calls_per_request"`
}

// MaxIntents bounds Stats.Intents, so a simulator that runs for days does
// not grow without end.
const MaxIntents = 100_000

// IntentKey is the key of Stats.Intents for a judge (veritas, sophia, dike) and a task.
func IntentKey(caller, task string) string { return caller + "|" + task }

// SetFaults changes the fault rates from now on.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Faults = f
	return nil
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Requests = s.requests.Load()
	out.Cancelled = s.cancelled.Load()
	out.Faults, out.PerModel, out.PerCaller = copyMap(s.stats.Faults), copyMap(s.stats.PerModel), copyMap(s.stats.PerCaller)
	out.Intents = make(map[string]Intent, len(s.stats.Intents))
	for k, v := range s.stats.Intents {
		out.Intents[k] = v
	}
	out.PerSecond = make(map[int64]int64, len(s.stats.PerSecond))
	for k, v := range s.stats.PerSecond {
		out.PerSecond[k] = v
	}
	return out
}

func copyMap(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	names := make([]string, 0, len(s.profiles))
	for m := range s.profiles {
		names = append(names, m)
	}
	sort.Strings(names)
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list"}
	for _, n := range names {
		list.Data = append(list.Data, model{ID: n, Object: "model", OwnedBy: "noesis-sim"})
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) count(kind, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case "fault":
		s.stats.Faults[what]++
	case "completion":
		s.stats.Completions++
	case "stream":
		s.stats.Streams++
	case "cold_start":
		s.stats.ColdStarts++
	case "truncated":
		s.stats.Truncated++
	case "structured":
		s.stats.Structured++
	}
}
