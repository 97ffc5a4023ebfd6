// Package router maps a stage's tier to an ordered chain of model targets and
// calls them through OpenAI-compatible APIs (Nebius Token Factory, a vLLM
// server on Modal, any other compatible endpoint, or the noesis simulator).
// Its Router implements pipeline.Completer.
//
// One call's way, top to bottom, one file a step:
//
//   - router.go: Router.Complete picks the tier's chain of targets (the
//     request's target first, batch targets first for batch work), skips
//     those whose breaker is open or whose provider's budget is spent, and
//     asks them in order until one answers: a fallback on failure, never
//     after a refusal no other target would answer differently;
//   - course.go: the request's course takes those steps one at a time
//     (drive), so that each backend call is made from one shallow frame
//     with the steps' state in the course, not in frames around the call;
//   - hedge.go: on a hedged tier, the second target is asked too once the
//     first has taken longer than its p95 latency; the first answer wins;
//   - cache.go: each target's answer goes through the answer Cache
//     (identical requests in flight share one call; a shared level, when
//     set, spans every worker process);
//   - target.go: a target is tried up to Config.Attempts times, the
//     first try by the course, the others under the one retry policy
//     (pipeline/retry, target.again), each try (attempt) waiting
//     out the target's rate-limit pause and learned pace (pace.go), taking
//     the agent's quota and the target's slots and shared limits (Quotas),
//     under a per-call timeout sized by the target's measured speed
//     (latency.go); a failure that says the target is broken counts toward
//     its breaker, one that came of our own load does not (load.go);
//   - backend.go, openai.go: the target's Backend makes the HTTP call
//     (httpclient.go) and classifies a failure into a *CallError
//     (errors.go), its facts as fields and no secret in its message.
//
// The router owns the only retry loop (the SDK's own retries are not used),
// the fallback order and the answer cache. Dependencies come in at
// construction: the shared limits (Config.Quotas), the call observer
// (Config.Observer), the cache's shared level (CacheConfig.Shared).
package router
