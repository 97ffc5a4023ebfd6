package sim

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// The answer lengths of Config.Lengths.
const (
	LengthsRealistic = "realistic"
	LengthsSeed      = "seed"
)

// Where a model's thinking arrives (Config.ThinkStyles).
const (
	ThinkTags  = "tags"
	ThinkClose = "close"
	ThinkField = "field"
	ThinkNone  = "none"
)

// DefaultThinkStyle is where a model's thinking arrives when ThinkStyles does
// not say: DeepSeek-R1-0528 models give only the closing tag, other R1
// models both tags, "Thinking" models (Qwen3) the reasoning field, and the
// rest do not think.
func DefaultThinkStyle(model string) string {
	switch {
	case strings.Contains(model, "R1-0528"):
		return ThinkClose
	case strings.Contains(model, "R1"):
		return ThinkTags
	case strings.Contains(model, "Thinking"):
		return ThinkField
	}
	return ThinkNone
}

// stormTrack follows one distinct request through a rate-limit storm.
type stormTrack struct {
	calls   int64
	limited time.Time // when it last got a 429
}

// thinkStyle is where model's thinking arrives.
func (s *Server) thinkStyle(model string) string {
	if st, ok := s.cfg.ThinkStyles[model]; ok {
		return st
	}
	return DefaultThinkStyle(model)
}

// thinkingTokens draws a thinking length: log-normal around the median.
func (s *Server) thinkingTokens(rng *rand.Rand) int {
	n := float64(s.cfg.ThinkingMedian) * math.Exp(s.cfg.ThinkingSigma*rng.NormFloat64())
	return max(16, int(math.Round(n)))
}

// composed is one answer: what it says, how long it is and takes.
type composed struct {
	content, reasoning string
	finish             string // stop or length
	tokens             int    // completion tokens
	latency            time.Duration
}

// compose writes the answer to a request: a judge's intent in a shape from
// the corpus after a thinking phase, or another caller's answer; then cuts
// it at max_tokens and times it. A response_format the server honours makes
// the answer the schema's JSON, and the thinking arrive in reasoning_content,
// as vLLM's reasoning parser gives it.
func (s *Server) compose(req chatRequest, prof Profile, caller, system, user string, judge bool, d directives, rng *rand.Rand) composed {
	style := s.thinkStyle(req.Model)
	if st := d["think"]; st != "" {
		style = st
	}
	thinks := style != ThinkNone
	schema, structured := s.honoured(req)
	if structured && thinks {
		style = ThinkField
	}
	realistic := s.cfg.Lengths != LengthsSeed
	seedTokens := max(1, int(math.Round(prof.TokensPerSecond*prof.Latency.Seconds())))
	var body, thinking string
	thinkTokens := 0
	judge = judge || caller == "veritas" || caller == "sophia" || caller == "dike"
	task, action := quotedTask(user)
	if thinks {
		thinkTokens = seedTokens / 2
		if realistic {
			thinkTokens = s.thinkingTokens(rng)
		}
		thinking = thinkingText(rng, caller, task, thinkTokens)
	}
	var in Intent
	switch {
	case judge:
		in, body = s.judgeBody(caller, system, user, task, action, d, rng, schema)
	case structured:
		body = writeSchema(schema, Intent{}, answer(caller, system, user, seedTokens))
	default:
		body = answer(caller, system, user, seedTokens)
	}
	if structured {
		s.count("structured", "")
	}
	answerTokens := max(1, (len(body)+3)/4) // a judge's answer: its length
	switch {
	case !judge && realistic:
		answerTokens = seedTokens // the seed measured these answers' lengths
	case !judge:
		answerTokens = max(1, seedTokens-thinkTokens)
	}
	total := thinkTokens + answerTokens
	finish := "stop"
	if req.MaxTokens > 0 && total > req.MaxTokens {
		finish = "length"
		if thinkTokens >= req.MaxTokens {
			thinking, body = cutAtRune(thinking, req.MaxTokens*4), ""
		} else {
			body = cutAtRune(body, (req.MaxTokens-thinkTokens)*4)
		}
		total = req.MaxTokens
		in.Truncated, in.Verdict = true, ""
	}
	a := composed{finish: finish, tokens: total, content: body}
	if thinks {
		a.content, a.reasoning = placeThinking(style, thinking, body, finish)
	}
	if realistic && (thinks || judge) {
		a.latency = s.cfg.TTFT + time.Duration(float64(total)/prof.TokensPerSecond*float64(time.Second))
	} else {
		a.latency = prof.Latency // the seed's measured figure, time to first token included
	}
	if judge {
		in.ThinkingTokens, in.AnswerTokens = thinkTokens, answerTokens
		s.mu.Lock()
		if len(s.stats.Intents) >= MaxIntents {
			clear(s.stats.Intents) // a long-running simulator keeps the latest only
		}
		s.stats.Intents[IntentKey(caller, task)] = in
		s.mu.Unlock()
	}
	return a
}

// judgeBody is a judge's intent and its answer: in a shape drawn from the
// corpus, or, held to a schema, as the schema's JSON (no shape, and no
// ambiguity: constrained decoding always picks a verdict).
func (s *Server) judgeBody(caller, system, user, task, action string, d directives, rng *rand.Rand, schema json.RawMessage) (Intent, string) {
	in := deliberate(caller, task+"\n"+action, d, seedOf(caller, user))
	if s.cfg.Gullible {
		if m := orderRE.FindStringSubmatch(outsideQuote(user)); m != nil {
			in = Intent{Verdict: strings.ToUpper(m[1]), Confidence: 1, Offense: "none", Obeyed: true}
		}
	}
	if schema != nil {
		in.Shape = ShapeSchema
		return in, writeSchema(schema, in, "")
	}
	tag := ""
	if m := tagRE.FindStringSubmatch(system); m != nil {
		tag = m[1]
	}
	sh := pickShape(s.shapes, rng, tag != "", s.cfg.Shape)
	in.Shape = sh.Name
	if sh.Ambiguous {
		in.Verdict = ""
	}
	return in, sh.Render(in, tag, task)
}

// ShapeSchema is Intent.Shape for an answer written in a response_format's schema.
const ShapeSchema = "json_schema"

// placeThinking puts the thinking where style says it arrives: the content
// and answer, and the reasoning field.
func placeThinking(style, thinking, body, finish string) (content, reasoning string) {
	switch style {
	case ThinkField:
		return body, thinking
	case ThinkClose:
		content = thinking
	default: // ThinkTags
		content = "<think>\n" + thinking
	}
	if finish != "length" || body != "" {
		content += "\n</think>\n\n" + body
	}
	return content, ""
}

// stormed counts a call of a distinct request and reports whether it is
// one of the first RateLimitFirst, to be answered 429.
func (s *Server) stormed(request string) bool {
	key := hash64(request)
	s.mu.Lock()
	defer s.mu.Unlock()
	tr := s.storm[key]
	if tr == nil {
		tr = &stormTrack{}
		s.storm[key] = tr
	}
	now := time.Now()
	if !tr.limited.IsZero() && now.Sub(tr.limited) < s.cfg.RetryAfter {
		s.stats.EarlyRetries++
	}
	tr.calls++
	s.stats.MaxCallsPerRequest = max(s.stats.MaxCallsPerRequest, tr.calls)
	if tr.calls <= int64(s.cfg.RateLimitFirst) {
		tr.limited = now
		return true
	}
	return false
}
