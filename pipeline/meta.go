package pipeline

import "time"

// Meta is the envelope every output carries.
type Meta struct {
	EventID       string    `json:"event_id"`
	AgentID       string    `json:"agent_id"`
	Stage         Stage     `json:"stage"`
	Model         string    `json:"model"`
	Provider      string    `json:"provider"`
	Cached        bool      `json:"cached"`
	Target        string    `json:"target,omitempty"`     // the model target that answered
	Fallback      bool      `json:"fallback,omitempty"`   // it was not the first of the tier's chain
	ColdStart     bool      `json:"cold_start,omitempty"` // the call met a cold (idle) target
	Hedged        bool      `json:"hedged,omitempty"`     // a hedged request to the next target won
	CostUSD       float64   `json:"cost_usd,omitempty"`   // estimated from the targets' prices
	LatencyMS     int64     `json:"latency_ms"`
	Usage         Usage     `json:"usage"`
	PromptVersion string    `json:"prompt_version"`
	CreatedAt     time.Time `json:"created_at"`
}

// Envelope returns the envelope itself: every output embeds a Meta, so every
// output is an Output.
func (m *Meta) Envelope() *Meta { return m }

// from copies a response's provenance into the envelope.
func (m *Meta) from(r Response) {
	m.Model, m.Provider, m.Cached, m.Usage = r.Model, r.Provider, r.Cached, r.Usage
	m.Target, m.Fallback, m.ColdStart, m.Hedged, m.CostUSD = r.Target, r.Fallback, r.ColdStart, r.Hedged, r.CostUSD
}

func newMeta(t *Thought, s Stage, started time.Time) Meta {
	return Meta{EventID: t.EventID, AgentID: t.AgentID, Stage: s, PromptVersion: PromptVersion, CreatedAt: time.Now().UTC(), LatencyMS: time.Since(started).Milliseconds()}
}

// maxThinking bounds the chain of thought copied into an output.
const maxThinking = 4 << 10
