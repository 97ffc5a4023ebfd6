package router_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// simChildEnv, when set, makes the test binary a simulator and nothing else
// (see TestMain): the benchmarks run the simulator in a process of its own,
// so that what they measure is the caller's only. Its value is the
// simulator's speed: simHeld or simAtOnce.
const simChildEnv = "NOESIS_ROUTER_SIM_CHILD"

const (
	simHeld   = "held"    // the seed's capped calls, 40 times slower (R1 in 77 s)
	simAtOnce = "at-once" // answers of realistic lengths, at once
)

// serveSimChild serves a simulator at speed, prints its URL, and serves
// until its standard input closes.
func serveSimChild(speed string) {
	cfg := sim.Config{Lengths: sim.LengthsSeed, LatencyScale: 40, Seed: 1}
	if speed == simAtOnce {
		cfg = sim.Config{LatencyScale: 0, Seed: 1}
	}
	s, err := sim.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	url, err := s.Start(ctx, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(url)
	_, _ = bufio.NewReader(os.Stdin).ReadString(0) // until the parent closes it
	cancel()
	s.Wait()
}

// startSimChild starts this test binary as a simulator at speed and returns its URL.
func startSimChild(b *testing.B, speed string) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), simChildEnv+"="+speed)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("simulator child: %v", err)
	}
	return strings.TrimSpace(line)
}

// simRequests asks the simulator at url how many requests it has received.
func simRequests(b *testing.B, url string) int64 {
	b.Helper()
	resp, err := http.Get(strings.TrimSuffix(url, "/v1") + "/sim/stats")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var st sim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		b.Fatal(err)
	}
	return st.Requests
}

// BenchmarkInFlight measures what a thought costs while its model calls are
// in flight: the narrative and the tribunal of one thought, through the
// router (go-openai on net/http) to a simulator in another process that
// holds every call for over a minute. With inFlightThoughts thoughts waiting
// on their 4 calls each, it reports per thought and per call the goroutines,
// the goroutine stack bytes and the live heap bytes (after two collections,
// which also shrink stacks as far as Go will), over HTTP/2 (h2c, as an HTTPS
// provider speaks) and HTTP/1.1 (one connection per call, as vLLM serves).
// The pool's own goroutine per delivery is played by the two goroutines per
// thought this benchmark starts. Run it once:
//
//	go test -run '^$' -bench InFlight -benchtime 1x ./router
//
// (profilesEnv has it write what the calls hold.)
func BenchmarkInFlight(b *testing.B) {
	if os.Getenv(profilesEnv) != "" {
		runtime.MemProfileRate = 64 // every live object of a thought in the heap profile
	}
	for _, proto := range []struct{ name, kind string }{{"http2", router.KindSim}, {"http1.1", router.KindOpenAI}} {
		b.Run(proto.name, func(b *testing.B) {
			url := startSimChild(b, simHeld)
			cfg := router.Config{
				Providers: []router.Provider{{Name: "sim", Kind: proto.kind, BaseURL: url, APIKey: "k"}},
				Targets: []router.Target{
					{Name: "fast", Provider: "sim", Model: router.DefaultFastModel},
					{Name: "reasoning", Provider: "sim", Model: router.DefaultReasoningModel},
				},
				Tiers:    map[pipeline.Tier][]string{pipeline.TierFast: {"fast"}, pipeline.TierReasoning: {"reasoning"}},
				Timeout:  10 * time.Minute,
				Attempts: 1,
			}
			cache, err := router.NewCache(router.CacheConfig{TTL: router.DefaultCacheTTL()})
			if err != nil {
				b.Fatal(err)
			}
			defer cache.Close()
			chain, err := router.New(cfg, cache, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer chain.Close()
			tribunal, err := pipeline.NewTribunal(chain, pipeline.TribunalConfig{Deadline: 10 * time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			bridge := &pipeline.Bridge{Completer: chain}
			b.Run("noesis", func(b *testing.B) {
				for b.Loop() {
					measureInFlight(b, url, func(ctx context.Context, th pipeline.Thought) {
						// Two goroutines, as the two stages' pools give a thought.
						var wg sync.WaitGroup
						wg.Go(func() { _, _ = bridge.Process(ctx, th) })
						_, _ = tribunal.Process(ctx, th)
						wg.Wait()
					})
				}
			})
			// The floor: the same four calls made with go-openai alone (the
			// same messages, the judges' with their schema), each from a
			// goroutine of its own, as noesis's stages and judges do.
			oc := openai.DefaultConfig("k")
			oc.BaseURL, oc.HTTPClient = url, router.NewHTTPClient(4096, proto.kind == router.KindSim)
			client := openai.NewClientWithConfig(oc)
			b.Run("go-openai-alone", func(b *testing.B) {
				for b.Loop() {
					measureInFlight(b, url, func(ctx context.Context, th pipeline.Thought) {
						// One goroutine per call: this one makes the last.
						prompts := promptsOf(tribunal, bridge, &th)
						call := func(i int) {
							model := router.DefaultReasoningModel
							if i == len(prompts)-1 {
								model = router.DefaultFastModel
							}
							req := openai.ChatCompletionRequest{Model: model, Messages: prompts[i], Temperature: 0.7}
							if i < len(prompts)-1 { // a judge's: with its answer's schema, as noesis sends it
								req.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
									JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: verdictSchema.Name, Schema: verdictSchema.Schema, Strict: true}}
							}
							_, _ = client.CreateChatCompletion(ctx, req)
						}
						var wg sync.WaitGroup
						for i := range len(prompts) - 1 {
							wg.Go(func() { call(i) })
						}
						call(len(prompts) - 1)
						wg.Wait()
					})
				}
			})
		})
	}
}

// verdictSchema is the schema noesis's judges send their calls with (the
// default, NOESIS_STRUCTURED=auto): the floor's judge calls carry it too.
var verdictSchema = pipeline.VerdictSchema()

// promptsOf returns the messages of th's four calls: three judges', then the bridge's.
func promptsOf(tr *pipeline.Tribunal, br *pipeline.Bridge, th *pipeline.Thought) [][]openai.ChatCompletionMessage {
	var out [][]openai.ChatCompletionMessage
	conv := func(ms []pipeline.Message) []openai.ChatCompletionMessage {
		var o []openai.ChatCompletionMessage
		for _, m := range ms {
			o = append(o, openai.ChatCompletionMessage{Role: string(m.Role), Content: m.Content})
		}
		return o
	}
	for _, j := range pipeline.DefaultJudges() {
		out = append(out, conv(tr.Messages(j, th)))
	}
	return append(out, conv(br.Messages(th)))
}

const inFlightThoughts = 1000

// measureInFlight starts inFlightThoughts goroutines running thought, each
// with a thought of its own, waits until their 4 calls each have reached the
// simulator, and reports what they hold.
func measureInFlight(b *testing.B, url string, thought func(context.Context, pipeline.Thought)) {
	b.Helper()
	base := snapshot()
	sent := simRequests(b, url)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range inFlightThoughts {
		// Each thought its own text, so no call is a cache hit or shares another's.
		th, err := pipeline.DecodeThought(fmt.Appendf(nil, `{"event_id":"evt-%d","agent_id":"daimon-7","content":{"user_input":"I will delete the backups older than %d days to free disk space on the archive volume."},"coherence":0.62,"action":"rm -rf /backups/2025-*","reasoning_trace":"retention policy says 30 days; the volume is at 91 percent"}`, i, i), 0)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { thought(ctx, th) })
	}
	calls := int64(inFlightThoughts * 4)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	deadline := time.After(time.Minute)
	for simRequests(b, url)-sent < calls {
		select {
		case <-deadline:
			b.Fatalf("%d of %d calls reached the simulator in a minute", simRequests(b, url)-sent, calls)
		case <-poll.C:
		}
	}
	held := snapshot()
	if prefix := os.Getenv(profilesEnv); prefix != "" {
		writeProfiles(b, prefix)
	}
	cancel()
	wg.Wait()
	per := func(v, base float64, n int) float64 { return (v - base) / float64(n) }
	b.ReportMetric(per(held.goroutines, base.goroutines, inFlightThoughts), "goroutines/thought")
	b.ReportMetric(per(held.stack, base.stack, inFlightThoughts), "stack-B/thought")
	b.ReportMetric(per(held.heap, base.heap, inFlightThoughts), "heap-B/thought")
	b.ReportMetric(per(held.stack+held.heap, base.stack+base.heap, int(calls)), "B/call")
}

// profilesEnv, set to a path prefix, has BenchmarkInFlight write what the
// held calls keep, at the moment it measures them: every goroutine's stack
// (prefix-<benchmark>.goroutines) and the live heap, sampled every 64
// bytes (prefix-<benchmark>.heap, for go tool pprof). Set to "frames", it
// instead ends the test binary with SIGQUIT there: run with
// GOTRACEBACK=system, the traceback gives each frame's sp and fp, so the
// bytes each function holds on a waiting goroutine's stack.
const profilesEnv = "NOESIS_INFLIGHT_PROFILES"

func writeProfiles(b *testing.B, prefix string) {
	if prefix == "frames" {
		_ = syscall.Kill(os.Getpid(), syscall.SIGQUIT)
		select {} // the signal ends the process
	}
	name := prefix + "-" + strings.ReplaceAll(b.Name(), "/", "_")
	for ext, p := range map[string]struct {
		profile string
		debug   int
	}{".goroutines": {"goroutine", 2}, ".heap": {"heap", 0}} {
		f, err := os.Create(name + ext)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup(p.profile).WriteTo(f, p.debug); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

type memSnapshot struct{ goroutines, stack, heap float64 }

// snapshot collects twice (a stack shrinks by half at most once a
// collection) and reads the goroutines, their stacks and the live heap.
func snapshot() memSnapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{goroutines: float64(runtime.NumGoroutine()), stack: float64(ms.StackInuse), heap: float64(ms.HeapAlloc)}
}
