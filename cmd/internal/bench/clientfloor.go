package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// clientFloor runs o's thoughts through the JetStream floor's worker (see
// jetStreamFloor) that also makes, for each thought, the model calls noesis
// makes: the narrative's one call to the fast tier's first model, and the
// three judges' calls at once, each to its judge's model, with go-openai
// over the transport noesis uses (HTTP/2 without TLS, or HTTP/1.1 with
// --http 1.1), to a fresh simulator set up as noesis's was. The requests are
// noesis's own (its prompts, max_tokens and temperatures), so the simulator
// answers each in the same time. Nothing else: no router, cache, breaker,
// limit, retry, answer reading or verdict; an answer is not read, and a
// failed call naks its thought. It is what the same calls cost with
// go-openai alone on this machine, the floor under noesis's latency,
// throughput and memory with models in the loop. The worker runs as a
// process of its own (`bench floor-worker`), as noesis's does, so that its
// peak RSS is its own; with --in-process, in this one.
//
// With cached, the floor keeps every answer it gets in noesis's answer
// cache (router.Cache, its size and TTLs as the worker's: see floorCalls)
// and is given the worker's warm-up first, so that its cache has filled as
// the worker's has when the measured thoughts come: the floor under the
// memory of a worker that keeps its answers.
func clientFloor(ctx context.Context, cfg config.Config, o benchOptions, sizes map[string]int, contents func(int) string, cached bool, progress io.Writer) (*FloorFigures, error) {
	sc := cfg.Sim()
	sc.RequestsPerSecond, sc.Capacity = o.providerRPS, o.capacity
	srv, err := sim.New(sc)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); srv.Wait() }()
	url, err := srv.Start(sctx, nil)
	if err != nil {
		return nil, err
	}
	name, warmup := "the client floor (go-openai alone)", time.Duration(0)
	if cached {
		name, warmup = "the client floor with the answer cache", o.warmup
	}
	if !o.inProcess { // a process of its own, as noesis's worker is: its memory is its own
		return runFloor(ctx, cfg, o, sizes, contents, name, warmup, nil, func(natsURL string) (*floorProcess, error) {
			return startFloorProcess(ctx, cfg, natsURL, url, o.http, sizes, cached)
		}, progress)
	}
	calls, err := newFloorCalls(cfg, url, o.http == "2", cached)
	if err != nil {
		return nil, err
	}
	defer calls.close()
	return runFloor(ctx, cfg, o, sizes, contents, name, warmup, calls.work, nil, progress)
}

// floorCalls makes noesis's model calls for a thought with go-openai alone.
type floorCalls struct {
	http      *http.Client
	api       *openai.Client
	bridge    *pipeline.Bridge
	tribunal  *pipeline.Tribunal
	narrative string   // the fast tier's first model
	judges    []string // each judge's model, in the tribunal's order
	temp      float32
	maxTokens int
	// cache, when set, keeps each answer as noesis's router does: under a
	// digest of its request, in the tier's cache (router.Cache.Do).
	cache *router.Cache
}

func newFloorCalls(cfg config.Config, url string, h2c, cached bool) (*floorCalls, error) {
	rc := cfg.Router(url)
	models := map[string]string{}
	for _, t := range rc.Targets {
		models[t.Name] = t.Model
	}
	first := func(tier pipeline.Tier) string {
		if names := rc.Tiers[tier]; len(names) > 0 {
			return models[names[0]]
		}
		return ""
	}
	tr, err := pipeline.NewTribunal(pipeline.CompleterFunc(func(context.Context, pipeline.Request) (pipeline.Response, error) {
		return pipeline.Response{}, errors.New("the client floor builds prompts only")
	}), cfg.Tribunal())
	if err != nil {
		return nil, err
	}
	f := &floorCalls{http: router.NewHTTPClient(rc.MaxIdleConnsPerHost, h2c), tribunal: tr, narrative: first(pipeline.TierFast),
		bridge: &pipeline.Bridge{Temperature: float32(cfg.NarrativeTemperature), MaxTokens: cfg.NarrativeMaxTokens},
		temp:   float32(cfg.Temperature), maxTokens: cfg.MaxTokens}
	for _, j := range tr.Judges() {
		m := models[j.Target]
		if m == "" {
			m = first(pipeline.TierReasoning)
		}
		f.judges = append(f.judges, m)
	}
	oc := openai.DefaultConfig("bench")
	oc.BaseURL, oc.HTTPClient = url, f.http
	f.api = openai.NewClientWithConfig(oc)
	if cached {
		if f.cache, err = router.NewCache(cfg.Cache()); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// close lets go of the calls' connections and cache.
func (f *floorCalls) close() {
	f.http.CloseIdleConnections()
	if f.cache != nil {
		f.cache.Close()
	}
}

// work makes the stage's calls for the thought in msg: one for the
// narrative, the three judges' at once for the tribunal.
func (f *floorCalls) work(ctx context.Context, stage pipeline.Stage, msg jetstream.Msg) error {
	var t pipeline.Thought
	if err := json.Unmarshal(msg.Data(), &t); err != nil {
		return err
	}
	if stage == pipeline.StageNarrative {
		return f.call(ctx, pipeline.TierFast, f.narrative, f.bridge.Messages(&t), f.bridge.Temperature, f.bridge.MaxTokens, nil)
	}
	judges := f.tribunal.Judges()
	errs := make([]error, len(judges))
	var wg sync.WaitGroup
	for i, j := range judges[:len(judges)-1] {
		wg.Go(func() {
			errs[i] = f.call(ctx, pipeline.TierReasoning, f.judges[i], f.tribunal.Messages(j, &t), f.temp, f.maxTokens, judgeSchema)
		})
	}
	last := len(judges) - 1
	errs[last] = f.call(ctx, pipeline.TierReasoning, f.judges[last], f.tribunal.Messages(judges[last], &t), f.temp, f.maxTokens, judgeSchema)
	wg.Wait()
	return errors.Join(errs...)
}

// judgeSchema is the schema a judge's call carries, as noesis's judges ask
// by default (NOESIS_STRUCTURED=auto, a target that takes it): without it
// the floor's calls were lighter than noesis's (no schema to encode and
// send, answers in text).
var judgeSchema = pipeline.VerdictSchema()

// call is one chat completion, as noesis's backend sends it: with schema,
// when set, as its response_format (json_schema, strict). With a cache,
// its answer is kept there (cached).
func (f *floorCalls) call(ctx context.Context, tier pipeline.Tier, model string, msgs []pipeline.Message, temp float32, maxTokens int, schema *pipeline.AnswerSchema) error {
	om := make([]openai.ChatCompletionMessage, len(msgs))
	for i, m := range msgs {
		om[i] = openai.ChatCompletionMessage{Role: string(m.Role), Content: m.Content}
	}
	if temp == 0 {
		temp = 1e-45 // as noesis sends a zero temperature (go-openai omits 0)
	}
	req := openai.ChatCompletionRequest{Model: model, Messages: om, Temperature: temp, MaxTokens: maxTokens} //lint:ignore SA1019 noesis sends max_tokens
	if schema != nil {
		req.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: schema.Name, Schema: schema.Schema, Strict: true}}
	}
	if f.cache == nil || !f.cache.On(tier) {
		_, err := f.api.CreateChatCompletion(ctx, req)
		return err
	}
	return f.cached(ctx, tier, req)
}

// cached makes req's call through the tier's cache, keyed by a digest of
// the model and the messages (as noesis's keys are digests), and keeps its
// answer there as noesis keeps one: content, reasoning, names and usage.
func (f *floorCalls) cached(ctx context.Context, tier pipeline.Tier, req openai.ChatCompletionRequest) error {
	h := sha256.New()
	h.Write([]byte(req.Model))
	for _, m := range req.Messages {
		h.Write([]byte{0})
		h.Write([]byte(m.Role))
		h.Write([]byte{0})
		h.Write([]byte(m.Content))
	}
	key := hex.EncodeToString(h.Sum(nil))
	_, err := f.cache.Do(ctx, tier, key, func(ctx context.Context) (pipeline.Response, error) {
		out, err := f.api.CreateChatCompletion(ctx, req)
		if err != nil {
			return pipeline.Response{}, err
		}
		if len(out.Choices) == 0 {
			return pipeline.Response{}, errors.New("the client floor: an answer without a choice")
		}
		msg := out.Choices[0].Message
		return pipeline.Response{Content: msg.Content, Reasoning: msg.ReasoningContent, Provider: "sim", Model: out.Model, Target: string(tier),
			Usage: pipeline.Usage{PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens, TotalTokens: out.Usage.TotalTokens}}, nil
	})
	return err
}
