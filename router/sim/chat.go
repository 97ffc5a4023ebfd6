package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/time/rate"
)

type chatRequest struct {
	Model       string                           `json:"model"`
	Messages    []struct{ Role, Content string } `json:"messages"`
	MaxTokens   int                              `json:"max_tokens"`
	Temperature *float64                         `json:"temperature"`
	Stream      bool                             `json:"stream"`
	StreamOpts  *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat *responseFormat `json:"response_format"`
}

var markerRE = regexp.MustCompile(`sim:([a-z]+)(?:=([A-Za-z0-9._-]+))?(?:@([a-z]+))?`)

type directives map[string]string

// parseMarkers reads the sim: markers that apply to caller.
func parseMarkers(text, caller string) directives {
	d := directives{}
	for _, m := range markerRE.FindAllStringSubmatch(text, -1) {
		if m[3] != "" && m[3] != caller {
			continue
		}
		d[m[1]] = m[2]
	}
	return d
}

// callerOf names who asks: from the X-Noesis-Purpose header noesis sends
// ("judge:VERITAS", "narrative", "analysis"), or, for other clients, from
// the system prompt.
func callerOf(purpose, system string) string {
	if j, ok := strings.CutPrefix(purpose, "judge:"); ok {
		return strings.ToLower(strings.ReplaceAll(j, "Ē", "E"))
	}
	if purpose != "" {
		return purpose
	}
	for _, j := range []string{"VERITAS", "SOPHIA", "DIKĒ"} {
		if strings.Contains(system, "You are "+j) {
			return strings.ToLower(strings.ReplaceAll(j, "Ē", "E"))
		}
	}
	switch {
	case strings.Contains(system, "ConsciousnessBridge"):
		return "narrative"
	case strings.Contains(system, "deep analyst"):
		return "analysis"
	}
	return "other"
}

// chatCall is one chat request as the simulator reads it.
type chatCall struct {
	req chatRequest
	// system: the instructions; user: the first user message (the quoted
	// thought); all: every other turn too (a follow-up sees the conversation).
	system, user, all string
	caller            string // who asks (callerOf)
	judge             bool   // a judge of noesis's tribunal asks
	d                 directives
	promptTokens      int
}

// key is what decides the call's answer: its model, instructions and turns.
func (c *chatCall) key() string { return c.req.Model + "\x00" + c.system + "\x00" + c.all }

// chat answers POST /v1/chat/completions: it checks the caller's keys,
// reads the request, counts it, plays a cold start, a fault or a refusal
// when one is due, and answers, after the answer's latency.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if !s.authorized(w, r) {
		return
	}
	c, ok := s.readChat(w, r)
	if !ok {
		return
	}
	cold, dice, faults := s.note(c)
	if cold {
		s.count("cold_start", "")
		if !sleep(r.Context(), s.cfg.ColdStart) {
			s.cancelled.Add(1)
			return
		}
	}
	fault := s.fault(c, faults, dice)
	if s.fail(w, r, fault) {
		return
	}
	if no := s.refuse(c.req, c.promptTokens, c.user); no != nil {
		s.writeRefusal(w, no)
		return
	}
	a := s.answer(c, fault)
	release, ok := s.generate(r.Context(), c.req.Model)
	if !ok {
		s.cancelled.Add(1)
		return
	}
	defer release()
	latency := time.Duration(float64(a.latency) * s.cfg.LatencyScale)
	if c.req.Stream {
		s.stream(w, r, c.req, a.content, a.reasoning, a.finish, a.tokens, c.promptTokens, latency)
		return
	}
	if !sleep(r.Context(), latency) {
		s.cancelled.Add(1)
		return
	}
	s.reply(w, c, a)
}

// authorized checks the API key and Modal's proxy auth, when configured,
// and answers 401 when they are wrong.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.APIKey != "" {
		if got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); got != s.cfg.APIKey {
			s.count("fault", "401")
			writeError(w, http.StatusUnauthorized, fmt.Sprintf("Incorrect API key provided: %q", got), "invalid_api_key")
			return false
		}
	}
	if s.cfg.ModalKey != "" || s.cfg.ModalSecret != "" {
		if r.Header.Get("Modal-Key") != s.cfg.ModalKey || r.Header.Get("Modal-Secret") != s.cfg.ModalSecret {
			s.count("fault", "401")
			writeError(w, http.StatusUnauthorized, "modal-http: missing or invalid proxy auth", "invalid_api_key")
			return false
		}
	}
	return true
}

// readChat reads the request, or answers 400 when it is not one.
func (s *Server) readChat(w http.ResponseWriter, r *http.Request) (*chatCall, bool) {
	var req chatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req); err != nil {
		s.count("fault", "400")
		writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error(), "invalid_request_error")
		return nil, false
	}
	if req.Model == "" || len(req.Messages) == 0 {
		s.count("fault", "400")
		writeError(w, http.StatusBadRequest, "model and messages are required", "invalid_request_error")
		return nil, false
	}
	var system, user, all strings.Builder
	for _, m := range req.Messages {
		switch {
		case m.Role == "system":
			system.WriteString(m.Content)
		case m.Role == "user" && user.Len() == 0:
			user.WriteString(m.Content)
			all.WriteString(m.Content)
		default:
			all.WriteString("\n" + m.Role + ": " + m.Content)
		}
	}
	purpose := r.Header.Get("X-Noesis-Purpose")
	c := &chatCall{req: req, system: system.String(), user: user.String(), all: all.String(),
		judge: strings.HasPrefix(purpose, "judge:"), promptTokens: (system.Len() + all.Len() + 3) / 4}
	c.caller = callerOf(purpose, c.system)
	c.d = parseMarkers(c.user, c.caller)
	return c, true
}

// note counts the call, and returns whether it meets a cold container, the
// fault dice's throw and the fault rates in force.
func (s *Server) note(c *chatCall) (cold bool, dice float64, faults Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.PerModel[c.req.Model]++
	s.stats.PerSecond[time.Now().Unix()]++
	s.stats.PerCaller[c.caller]++
	if c.req.Temperature == nil {
		s.stats.NoTemperature++
	}
	if strings.IndexFunc(c.all, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) >= 0 {
		s.stats.Invisible++
	}
	cold = s.cfg.ColdStart > 0 && (s.lastCall.IsZero() || time.Since(s.lastCall) > s.cfg.ScaleDown)
	s.lastCall = time.Now()
	return cold, s.rng.Float64(), s.cfg.Faults
}

// fault is the fault the call meets: a marker's, the dice's, a rate-limit
// storm's or the quota's 429; "" for none.
func (s *Server) fault(c *chatCall, faults Faults, dice float64) string {
	fault := pickFault(c.d, faults, dice)
	if fault == "" && s.cfg.RateLimitFirst > 0 && s.stormed(c.key()) {
		fault = "429"
	}
	if fault == "" && s.cfg.RequestsPerSecond > 0 && !s.quota(c.req.Model).Allow() {
		fault = "429"
	}
	return fault
}

// fail plays the faults that answer instead of the model (a hang, a 429,
// an HTTP status) and reports whether it did.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, fault string) bool {
	switch fault {
	case "hang":
		s.count("fault", "hang")
		<-r.Context().Done()
		s.cancelled.Add(1)
		return true
	case "429":
		s.count("fault", "429")
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.cfg.RetryAfter.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "rate limit reached (simulated)", "rate_limit_exceeded")
		return true
	}
	code, err := strconv.Atoi(fault)
	if err != nil || code < 400 || code >= 600 {
		return false
	}
	s.count("fault", fault)
	kind := "server_error"
	if code < 500 {
		kind = "invalid_request_error"
	}
	writeError(w, code, fmt.Sprintf("simulated HTTP %d", code), kind)
	return true
}

// answer composes the call's answer, as its model, caller and markers say.
func (s *Server) answer(c *chatCall, fault string) composed {
	prof, ok := s.profiles[c.req.Model]
	if !ok {
		prof = DefaultProfile
	}
	rng := rand.New(rand.NewPCG(s.cfg.Seed^hash64(c.key()), 0x51ed))
	a := s.compose(c.req, prof, c.caller, c.system, c.user, c.judge, c.d, rng)
	if fault == "malformed" {
		s.count("fault", "malformed")
		a.content = "I have considered the matter at length and decline to use any format."
	}
	if _, empty := c.d["empty"]; empty {
		a.content = ""
	}
	if a.finish == "length" {
		s.count("truncated", "")
	}
	return a
}

// reply writes the answer as a chat completion (or the broken body
// "sim:badjson" asks for).
func (s *Server) reply(w http.ResponseWriter, c *chatCall, a composed) {
	if _, bad := c.d["badjson"]; bad {
		s.count("fault", "badjson")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"sim-broken","choices":[{"message":{"content":"unterminated`))
		return
	}
	s.count("completion", "")
	msg := map[string]any{"role": "assistant", "content": a.content}
	if a.reasoning != "" {
		msg["reasoning_content"] = a.reasoning
	}
	if a.finish == "length" && a.content == "" {
		msg["content"] = nil // what vLLM's reasoning parser sends when the thinking was cut
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "chatcmpl-sim-" + shortHash(c.req.Model+c.user), "object": "chat.completion", "created": time.Now().Unix(), "model": c.req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": a.finish, "message": msg}},
		"usage":   map[string]int{"prompt_tokens": c.promptTokens, "completion_tokens": a.tokens, "total_tokens": c.promptTokens + a.tokens},
	})
}

// quota is model's rate limiter under RequestsPerSecond.
func (s *Server) quota(model string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quotas == nil {
		s.quotas = map[string]*rate.Limiter{}
	}
	q := s.quotas[model]
	if q == nil {
		q = rate.NewLimiter(rate.Limit(s.cfg.RequestsPerSecond), max(1, int(s.cfg.RequestsPerSecond)))
		s.quotas[model] = q
	}
	return q
}
