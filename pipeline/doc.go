// Package pipeline is the domain of noesis: the thoughts agents publish
// (Thought), the stages that turn them into outputs (Stage, each on its model
// Tier) and the stages themselves: the Bridge writes a narrative, the
// Tribunal's judges deliberate and Decide a Verdict (its Transcript says how),
// the Analyst writes an analysis. It knows nothing of NATS or of any model
// vendor: it declares the small interfaces it needs (Completer) and lets
// other packages supply them (router, consumers).
//
// Its subpackages hold what the stages use: answer reads a judge's answer,
// breaker is the judges' (and the model targets') circuit breaker, fair
// shares a queue between agents, retry is the one retry policy.
package pipeline
