// Package sim is the noesis model simulator: a real HTTP server that speaks
// the OpenAI chat-completions API (/v1/chat/completions, streaming or not,
// and /v1/models) with the latency profiles of the seed's benchmark, answers
// in the shape each noesis stage asks for, and faults on demand. Every answer
// is deterministic for its request and marked as simulated.
//
// Faults come from rates in Config, or from markers in the request's text,
// which make tests exact: "sim:http=503" answers that status, "sim:hang"
// never answers, "sim:malformed" gives an answer in no readable shape,
// "sim:badjson" a broken response body, "sim:empty" an empty answer,
// "sim:verdict=FAIL" and "sim:offense=capital" steer a judge. A marker may be
// scoped to one caller with "@veritas", "@sophia", "@dike", "@narrative" or
// "@analysis", as in "sim:hang@sophia".
//
// Requests are refused for what they hold as a provider refuses them, with
// no marker: past a model's context (Config.ContextLength), or holding a
// word its content filter blocks (Config.Blocked), in OpenAI's or vLLM's
// error shape (Config.ErrorStyle).
package sim
