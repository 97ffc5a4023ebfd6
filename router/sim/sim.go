package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

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
	shapes    []Shape    // the judge answer shapes of the corpora

	// serving owns the goroutines of Start's servers; Wait waits for them.
	serving sync.WaitGroup
}

// New returns a simulator. It fails when the embedded corpus of judge
// answer shapes does not parse (see Shapes).
func New(cfg Config) (*Server, error) {
	shapes, err := corpus()
	if err != nil {
		return nil, err
	}
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
	return &Server{cfg: cfg, profiles: cfg.Profiles, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), storm: map[uint64]*stormTrack{}, shapes: shapes,
		stats: Stats{Faults: map[string]int64{}, PerModel: map[string]int64{}, PerCaller: map[string]int64{}, PerSecond: map[int64]int64{}, Intents: map[string]Intent{}}}, nil
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

// Serve answers on ln until ctx ends, then shuts down within 5 s; it
// returns once the shutdown is over (or serving failed).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, Protocols: Protocols()}
	shut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shut)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	err := srv.Serve(ln)
	if !stop() {
		<-shut // the shutdown began: it is over before Serve returns
	}
	if err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

// Start serves the simulator on a free loopback port until ctx ends, and
// returns its base URL (http://127.0.0.1:PORT/v1). onError, when set, is
// told if serving fails.
func (s *Server) Start(ctx context.Context, onError func(error)) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("simulator: %w", err)
	}
	s.serving.Go(func() {
		if err := s.Serve(ctx, ln); err != nil && onError != nil {
			onError(err)
		}
	})
	return "http://" + ln.Addr().String() + "/v1", nil
}

// Wait returns once every server Start started has shut down (their
// contexts ended) and onError has been told of any failure.
func (s *Server) Wait() { s.serving.Wait() }
