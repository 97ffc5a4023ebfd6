package router

import (
	"context"

	"github.com/noesis-dev/noesis/pipeline"
)

// Backend answers one chat request for a model target, in its provider's
// protocol. It is the one seam between the router's policies (chains,
// retries, breakers, limits, hedging, costs, timeouts) and a provider's API:
// OpenAI-compatible endpoints today (openAIBackend); a native API later,
// without touching the rest. The call's deadline is on ctx. Errors are
// *CallError. Implementations must be safe for concurrent use.
type Backend interface {
	Chat(ctx context.Context, req *pipeline.Request) (Reply, error)
}

// Reply is a backend's answer to one request.
type Reply struct {
	Content   string // the answer, thinking removed
	Reasoning string // the thinking: a reasoning field, or the <think> block
	Usage     pipeline.Usage
	Truncated bool // stopped at max_tokens
	// Structured is true when the request went with its schema
	// (response_format json_schema) and was answered.
	Structured bool
}

// warmer is a Backend that can wake a cold endpoint before the first call.
type warmer interface {
	WarmUp(ctx context.Context) error
}
