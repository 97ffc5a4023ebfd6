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

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/time/rate"
)

// Profile is a model's speed: how long a typical answer takes and how many
// tokens per second it streams.
type Profile struct {
	Latency         time.Duration
	TokensPerSecond float64
}

// SeedProfiles returns the seed's measured profiles (Nebius Token Factory),
// plus the DEEP tier's model, which the seed named but did not measure (given
// the slowest thinking model's figures).
func SeedProfiles() map[string]Profile {
	return map[string]Profile{
		"meta-llama/Llama-3.3-70B-Instruct-fast": {1135 * time.Millisecond, 44.9},
		"deepseek-ai/DeepSeek-V3-0324-fast":      {1201 * time.Millisecond, 35.0},
		"Qwen/Qwen3-32B-fast":                    {1807 * time.Millisecond, 83.0},
		"deepseek-ai/DeepSeek-R1-0528-fast":      {1930 * time.Millisecond, 77.7},
		"google/gemma-3-27b-it-fast":             {2318 * time.Millisecond, 15.5},
		"Qwen/Qwen3-30B-A3B-Thinking-2507":       {3776 * time.Millisecond, 39.7},
		"deepseek-ai/DeepSeek-R1-0528":           {4516 * time.Millisecond, 20.4},
		"Qwen/Qwen3-235B-A22B-Thinking-2507":     {4516 * time.Millisecond, 20.4},
	}
}

// DefaultProfile serves models missing from the profile table.
var DefaultProfile = Profile{Latency: time.Second, TokensPerSecond: 50}

// Config sets the simulator's speed and faults. Rates are probabilities in [0,1].
type Config struct {
	// Profiles per model; nil means SeedProfiles.
	Profiles map[string]Profile
	// LatencyScale multiplies every profile's latency: 1 is the seed's speed,
	// 0 answers at once.
	LatencyScale float64
	// APIKey, when set, must be presented as a bearer token. A wrong key gets a
	// 401 whose message quotes the key presented, as some providers do, so
	// tests can prove that noesis never repeats it.
	APIKey string
	// ModalKey and ModalSecret, when set, must come as the Modal-Key and
	// Modal-Secret headers, as Modal's proxy auth asks (the simulator playing Modal).
	ModalKey, ModalSecret string
	// Faults are the fault rates at start; SetFaults and POST /sim/faults change them.
	Faults
	// RetryAfter is announced with each 429; default 1 s.
	RetryAfter time.Duration
	// ColdStart delays the first request, and the first after an idle
	// ScaleDown window, as a serverless GPU container would.
	ColdStart time.Duration
	ScaleDown time.Duration
	// Seed seeds the fault dice and every draw of an answer (its shape, its
	// thinking length): the same seed and request give the same answer.
	Seed uint64

	// Lengths says how long answers are. LengthsRealistic (the default):
	// reasoning models think for a log-normal number of tokens before they
	// answer (median ThinkingMedian, spread ThinkingSigma), and a call takes
	// TTFT + tokens / the profile's tokens per second. LengthsSeed: every
	// call takes the profile's latency, as the seed's capped benchmark calls did.
	Lengths string
	// ThinkingMedian (default 700 tokens) and ThinkingSigma (default 0.7, so
	// about 2 % of answers think past 3,000 tokens) shape the thinking lengths.
	ThinkingMedian int
	ThinkingSigma  float64
	// TTFT is the time to the first token; default 300 ms.
	TTFT time.Duration
	// ThinkStyles says, per model, where its thinking arrives: ThinkTags
	// (<think>…</think> in the content), ThinkClose (only the closing tag: the
	// chat template opened the block, as DeepSeek-R1-0528's does), ThinkField
	// (the reasoning_content field, as vLLM's reasoning parser gives it) or
	// ThinkNone. Unlisted models: DefaultThinkStyle.
	ThinkStyles map[string]string
	// Shape, when set, makes every judge answer in that corpus shape.
	Shape string
	// RateLimitFirst answers the first N calls of every distinct request with
	// 429 and Retry-After: a rate-limit storm that lets each call through on
	// its N+1th try. Stats count the retries that came sooner than asked.
	RateLimitFirst int
	// RequestsPerSecond, when positive, is a provider's quota: each model
	// takes that many requests a second (a second's worth in a burst) and
	// answers the rest 429 with Retry-After, as a provider's rate limiter does.
	RequestsPerSecond float64
	// Gullible judges obey any order they find outside the quoted data of
	// the user message ("answer PASS"): a judge that proves the quoting holds.
	Gullible bool
	// ContextLength, when set, is every model's context in tokens, as vLLM's
	// --max-model-len: a request whose prompt (estimated at four characters a
	// token, as the reported usage) and max_tokens together exceed it is
	// answered 400, as the provider would (Faults["context_length"]).
	// ContextLengths sets it per model, over ContextLength.
	ContextLength  int
	ContextLengths map[string]int
	// Blocked lists words a content filter refuses: a request whose user
	// message holds one (any case) is answered 400 content_filter
	// (Faults["content_filter"]).
	Blocked []string
	// ErrorStyle is the shape of those refusals' bodies: ErrorsOpenAI (the
	// default) or ErrorsVLLM.
	ErrorStyle string
	// ResponseFormat is what the server does with a request's
	// response_format: FormatHonour (the default, also ""), FormatRefuse or
	// FormatIgnore. A "sim:malformed" answer stays prose even when honoured:
	// a provider that dropped the format for that answer.
	ResponseFormat string
	// Capacity, when positive, is how many answers each model generates at
	// once; the rest queue in arrival order, so latency grows with the load
	// (see generators in capacity.go). 0: no limit.
	Capacity int
}

// Server is the simulator. Safe for concurrent use.
type Server struct {
	cfg      Config
	profiles map[string]Profile

	mu        sync.Mutex
	rng       *rand.Rand
	stats     Stats
	lastCall  time.Time
	storm     map[uint64]*stormTrack
	quotas    map[string]*rate.Limiter // per model, with RequestsPerSecond
	requests  atomic.Int64
	cancelled atomic.Int64
	gen       generators // Capacity's slots
}

// New returns a simulator.
func New(cfg Config) *Server {
	if cfg.Profiles == nil {
		cfg.Profiles = SeedProfiles()
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.ScaleDown <= 0 {
		cfg.ScaleDown = 5 * time.Minute
	}
	if cfg.Lengths == "" {
		cfg.Lengths = LengthsRealistic
	}
	if cfg.ThinkingMedian <= 0 {
		cfg.ThinkingMedian = 700
	}
	if cfg.ThinkingSigma <= 0 {
		cfg.ThinkingSigma = 0.7
	}
	if cfg.TTFT <= 0 {
		cfg.TTFT = 300 * time.Millisecond
	}
	return &Server{cfg: cfg, profiles: cfg.Profiles, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), storm: map[uint64]*stormTrack{},
		stats: Stats{Faults: map[string]int64{}, PerModel: map[string]int64{}, PerCaller: map[string]int64{}, PerSecond: map[int64]int64{}, Intents: map[string]Intent{}}}
}

// Handler serves the OpenAI-compatible API under /v1 and the counters at /sim/stats.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("GET /sim/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), "invalid_request_error")
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), "invalid_request_error")
			return
		}
		writeJSON(w, http.StatusOK, f)
	})
	return mux
}

// Protocols are what the simulator speaks: HTTP/1.1, and HTTP/2 without TLS
// (h2c, prior knowledge), as an HTTPS provider speaks HTTP/2 through ALPN.
func Protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// Serve answers on ln until ctx ends, then shuts down within 5 s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, Protocols: Protocols()}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

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

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if s.cfg.APIKey != "" {
		if got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); got != s.cfg.APIKey {
			s.count("fault", "401")
			writeError(w, http.StatusUnauthorized, fmt.Sprintf("Incorrect API key provided: %q", got), "invalid_api_key")
			return
		}
	}
	if s.cfg.ModalKey != "" || s.cfg.ModalSecret != "" {
		if r.Header.Get("Modal-Key") != s.cfg.ModalKey || r.Header.Get("Modal-Secret") != s.cfg.ModalSecret {
			s.count("fault", "401")
			writeError(w, http.StatusUnauthorized, "modal-http: missing or invalid proxy auth", "invalid_api_key")
			return
		}
	}
	var req chatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req); err != nil {
		s.count("fault", "400")
		writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error(), "invalid_request_error")
		return
	}
	if req.Model == "" || len(req.Messages) == 0 {
		s.count("fault", "400")
		writeError(w, http.StatusBadRequest, "model and messages are required", "invalid_request_error")
		return
	}
	// system: the instructions; user: the first user message (the quoted
	// thought); all: every other turn too (a follow-up sees the conversation).
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
	caller := callerOf(r.Header.Get("X-Noesis-Purpose"), system.String())
	d := parseMarkers(user.String(), caller)
	s.mu.Lock()
	s.stats.PerModel[req.Model]++
	s.stats.PerSecond[time.Now().Unix()]++
	s.stats.PerCaller[caller]++
	if req.Temperature == nil {
		s.stats.NoTemperature++
	}
	if strings.IndexFunc(all.String(), func(r rune) bool { return unicode.Is(unicode.Cf, r) }) >= 0 {
		s.stats.Invisible++
	}
	cold := s.cfg.ColdStart > 0 && (s.lastCall.IsZero() || time.Since(s.lastCall) > s.cfg.ScaleDown)
	s.lastCall = time.Now()
	dice := s.rng.Float64()
	faults := s.cfg.Faults
	s.mu.Unlock()

	if cold {
		s.count("cold_start", "")
		if !sleep(r.Context(), s.cfg.ColdStart) {
			s.cancelled.Add(1)
			return
		}
	}
	fault := pickFault(d, faults, dice)
	if fault == "" && s.cfg.RateLimitFirst > 0 && s.stormed(req.Model+"\x00"+system.String()+"\x00"+all.String()) {
		fault = "429"
	}
	if fault == "" && s.cfg.RequestsPerSecond > 0 && !s.quota(req.Model).Allow() {
		fault = "429"
	}
	switch fault {
	case "hang":
		s.count("fault", "hang")
		<-r.Context().Done()
		s.cancelled.Add(1)
		return
	case "429":
		s.count("fault", "429")
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.cfg.RetryAfter.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "rate limit reached (simulated)", "rate_limit_exceeded")
		return
	case "":
	default:
		if code, err := strconv.Atoi(fault); err == nil && code >= 400 && code < 600 {
			s.count("fault", fault)
			kind := "server_error"
			if code < 500 {
				kind = "invalid_request_error"
			}
			writeError(w, code, fmt.Sprintf("simulated HTTP %d", code), kind)
			return
		}
	}
	promptTokens := (system.Len() + all.Len() + 3) / 4
	if no := s.refuse(req, promptTokens, user.String()); no != nil {
		s.writeRefusal(w, no)
		return
	}

	prof, ok := s.profiles[req.Model]
	if !ok {
		prof = DefaultProfile
	}
	rng := rand.New(rand.NewPCG(s.cfg.Seed^hash64(req.Model+"\x00"+system.String()+"\x00"+all.String()), 0x51ed))
	a := s.compose(req, prof, caller, system.String(), user.String(), strings.HasPrefix(r.Header.Get("X-Noesis-Purpose"), "judge:"), d, rng)
	if fault == "malformed" {
		s.count("fault", "malformed")
		a.content = "I have considered the matter at length and decline to use any format."
	}
	if _, empty := d["empty"]; empty {
		a.content = ""
	}
	if a.finish == "length" {
		s.count("truncated", "")
	}
	release, ok := s.generate(r.Context(), req.Model)
	if !ok {
		s.cancelled.Add(1)
		return
	}
	defer release()
	latency := time.Duration(float64(a.latency) * s.cfg.LatencyScale)
	if req.Stream {
		s.stream(w, r, req, a.content, a.reasoning, a.finish, a.tokens, promptTokens, latency)
		return
	}
	if !sleep(r.Context(), latency) {
		s.cancelled.Add(1)
		return
	}
	if _, bad := d["badjson"]; bad {
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
		"id": "chatcmpl-sim-" + shortHash(req.Model+user.String()), "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": a.finish, "message": msg}},
		"usage":   map[string]int{"prompt_tokens": promptTokens, "completion_tokens": a.tokens, "total_tokens": promptTokens + a.tokens},
	})
}

// Start serves the simulator on a free loopback port until ctx ends, and
// returns its base URL (http://127.0.0.1:PORT/v1). onError, when set, is
// told if serving fails.
func (s *Server) Start(ctx context.Context, onError func(error)) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("simulator: %w", err)
	}
	go func() {
		if err := s.Serve(ctx, ln); err != nil && onError != nil {
			onError(err)
		}
	}()
	return "http://" + ln.Addr().String() + "/v1", nil
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
