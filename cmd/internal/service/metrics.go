package service

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
)

// metrics turns what the router, the pools and the cache report into
// Prometheus metrics. It implements router.CallObserver and consumers.DeliveryObserver.
type metrics struct {
	reg *prometheus.Registry

	callSeconds *prometheus.HistogramVec
	tokens      *prometheus.CounterVec
	cost        *prometheus.CounterVec
	callErrors  *prometheus.CounterVec
	inFlight    *prometheus.GaugeVec
	deliveries  *prometheus.CounterVec
	redelivered *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	abstentions *prometheus.CounterVec
	answers     *prometheus.CounterVec // judges' answers by format: structured or text
	pending     *prometheus.GaugeVec
	ackPending  *prometheus.GaugeVec
	redeliverQ  *prometheus.GaugeVec
	waiting     *prometheus.GaugeVec
	// Per agent, the MetricsAgents agents holding the most thoughts, the
	// rest summed under agent "_other": the label's values stay bounded.
	agentThoughts, agentRequests, agentUSD *prometheus.GaugeVec
}

// MetricsAgents is how many agents get series of their own; the others are
// summed under agent="_other".
const MetricsAgents = 10

var (
	_ router.CallObserver        = (*metrics)(nil)
	_ consumers.DeliveryObserver = (*metrics)(nil)
)

// newMetrics registers the metrics; judges name the tribunal's judges, whose
// abstention counters start at zero like every other known label value.
func newMetrics(cache *router.Cache, judges []pipeline.Judge) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{reg: reg}
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "noesis_model_cost_usd_total", Help: "Estimated spend in USD: NOESIS_PRICES per token, or GPU time on Modal."}, []string{"tier", "provider", "model"})
	m.callSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "noesis_model_call_duration_seconds", Help: "Upstream model call latency.",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 1.5, 2, 3, 5, 10, 30, 60, 120}}, []string{"tier", "provider", "model", "outcome"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "noesis_model_tokens_total", Help: "Tokens sent (in) and received (out)."}, []string{"tier", "provider", "model", "direction"})
	m.callErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "noesis_model_errors_total", Help: "Failed upstream calls by class: timeout, rate_limited, server, request (refused for what it holds: 400, 413, 422), client (other 4xx), canceled, network, budget, other; parse for judge answers in no readable shape."}, []string{"tier", "provider", "model", "class"})
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "noesis_model_calls_in_flight", Help: "Upstream calls under way."}, []string{"tier", "provider", "model"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "noesis_thoughts_total", Help: "Deliveries of thoughts by stage and outcome: published, duplicate, skipped, retried, dead_lettered, rate_limit_wait, stream_full_wait."}, []string{"stage", "outcome"})
	m.redelivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "noesis_redeliveries_total", Help: "Deliveries after the first."}, []string{"stage"})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "noesis_dead_letters_total", Help: "Thoughts dead-lettered by this process."}, []string{"stage"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "noesis_tribunal_decisions_total", Help: "Verdicts by decision."}, []string{"decision"})
	m.abstentions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "noesis_judge_abstentions_total", Help: "Judges that abstained, by kind: answer (it answered without a readable verdict, or abstained) or operational (it could not be asked or gave no answer)."}, []string{"judge", "kind"})
	m.answers = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "noesis_judge_answers_total", Help: "Judges' answers a vote was read from, by format: structured (given through the verdict's JSON schema, response_format) or text."}, []string{"judge", "format"})
	m.pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "noesis_consumer_pending", Help: "Thoughts not yet delivered to a stage's consumer (its lag)."}, []string{"stage"})
	m.ackPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "noesis_consumer_ack_pending", Help: "Thoughts delivered and not yet acknowledged."}, []string{"stage"})
	m.redeliverQ = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "noesis_consumer_redelivered", Help: "Thoughts being redelivered."}, []string{"stage"})
	m.waiting = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "noesis_consumer_waiting_pulls", Help: "Pull requests waiting on the consumer (idle workers)."}, []string{"stage"})
	m.agentThoughts = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "noesis_agent_thoughts_held", Help: "Thoughts each agent holds in NOESIS_THOUGHTS (NOESIS_AGENT_MAX_THOUGHTS bounds it); the 10 that hold most, the rest as _other."}, []string{"agent"})
	m.agentRequests = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "noesis_agent_requests_window", Help: "Model requests each agent made this limit window, over every worker (kept when agents have quotas)."}, []string{"agent"})
	m.agentUSD = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "noesis_agent_spend_usd_month", Help: "Each agent's estimated spend this month, over every worker (kept when agents have quotas)."}, []string{"agent"})
	for _, c := range []prometheus.Collector{m.callSeconds, m.tokens, m.cost, m.callErrors, m.inFlight, m.deliveries, m.redelivered, m.deadLetters,
		m.decisions, m.abstentions, m.answers, m.pending, m.ackPending, m.redeliverQ, m.waiting, m.agentThoughts, m.agentRequests, m.agentUSD} {
		f(c)
	}
	// Known label values start at zero, so a dashboard sees a series before
	// its first event (as the Prometheus docs advise).
	for _, st := range pipeline.Stages {
		m.deadLetters.WithLabelValues(string(st))
		m.redelivered.WithLabelValues(string(st))
		for _, o := range []string{"published", "duplicate", "skipped", "retried", "dead_lettered", "rate_limit_wait", "stream_full_wait"} {
			m.deliveries.WithLabelValues(string(st), o)
		}
	}
	for _, d := range []pipeline.Decision{pipeline.DecisionPass, pipeline.DecisionReview, pipeline.DecisionFail, pipeline.DecisionCapital, pipeline.DecisionUnavailable} {
		m.decisions.WithLabelValues(string(d))
	}
	for _, j := range judges {
		for _, k := range []string{pipeline.AbstainAnswer, pipeline.AbstainOperational} {
			m.abstentions.WithLabelValues(j.Name, k)
		}
		m.answers.WithLabelValues(j.Name, "structured")
		m.answers.WithLabelValues(j.Name, "text")
	}
	if cache != nil {
		for _, t := range pipeline.Tiers {
			tier := t
			for _, kind := range []string{"hit", "miss", "coalesced", "shared_hit", "shared_wait", "shared_skipped"} {
				kind := kind
				f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "noesis_cache_requests_total", Help: "Cache lookups by result.",
					ConstLabels: prometheus.Labels{"tier": string(tier), "result": kind}}, func() float64 {
					s := cache.StatsByTier()[tier]
					return float64(map[string]uint64{"hit": s.Hits, "miss": s.Misses, "coalesced": s.Coalesced, "shared_hit": s.SharedHits, "shared_wait": s.SharedWaits, "shared_skipped": s.SharedSkipped}[kind])
				}))
			}
		}
		f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "noesis_cache_evictions_total", Help: "Answers evicted from the in-process cache."},
			func() float64 { return float64(cache.Stats().Evictions) }))
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "noesis_cache_alone", Help: "1 while no other worker is live: the shared cache level is then neither asked nor told."},
			func() float64 {
				if cache.Alone() {
					return 1
				}
				return 0
			}))
	}
	return m
}

// watchBreakers exports each model target's breaker (0 closed, 1 half-open,
// 2 open), whether it is asked in a schema, and the rate it is paced to.
func (m *metrics) watchBreakers(chain *router.Router) {
	for name := range chain.BreakerStates() {
		target := name
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "noesis_target_breaker_state",
			Help: "A model target's circuit breaker: 0 closed, 1 half-open, 2 open.", ConstLabels: prometheus.Labels{"target": target}},
			func() float64 {
				return map[string]float64{"closed": 0, "half-open": 1, "open": 2}[chain.BreakerStates()[target]]
			}))
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "noesis_target_structured",
			Help: "Whether a model target is asked in a request's JSON schema (response_format): 1 yes (auto or on), 0 no (off, or refused since start).", ConstLabels: prometheus.Labels{"target": target}},
			func() float64 {
				return map[string]float64{router.StructuredAuto: 1, router.StructuredOn: 1}[chain.Structured()[target]]
			}))
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "noesis_target_paced_rps",
			Help: "The calls per second a model target is paced to, learned from its 429s; 0: not paced.", ConstLabels: prometheus.Labels{"target": target}},
			func() float64 { return chain.PacedRates()[target] }))
	}
}

// CallStarted implements router.CallObserver.
func (m *metrics) CallStarted(tier pipeline.Tier, t router.Target) {
	m.inFlight.WithLabelValues(string(tier), t.Provider, t.Model).Inc()
}

// CallFinished implements router.CallObserver.
func (m *metrics) CallFinished(tier pipeline.Tier, t router.Target, d time.Duration, u pipeline.Usage, costUSD float64, err error) {
	m.inFlight.WithLabelValues(string(tier), t.Provider, t.Model).Dec()
	outcome := "ok"
	if err != nil {
		outcome = "error"
		m.callErrors.WithLabelValues(string(tier), t.Provider, t.Model, router.ErrorClass(err)).Inc()
	}
	m.callSeconds.WithLabelValues(string(tier), t.Provider, t.Model, outcome).Observe(d.Seconds())
	m.tokens.WithLabelValues(string(tier), t.Provider, t.Model, "in").Add(float64(u.PromptTokens))
	m.tokens.WithLabelValues(string(tier), t.Provider, t.Model, "out").Add(float64(u.CompletionTokens))
	if costUSD > 0 {
		m.cost.WithLabelValues(string(tier), t.Provider, t.Model).Add(costUSD)
	}
}

// Handled implements consumers.DeliveryObserver.
func (m *metrics) Handled(stage pipeline.Stage, outcome string, delivery uint64, out pipeline.Output) {
	m.deliveries.WithLabelValues(string(stage), outcome).Inc()
	if delivery > 1 {
		m.redelivered.WithLabelValues(string(stage)).Inc()
	}
	if outcome == "dead_lettered" {
		m.deadLetters.WithLabelValues(string(stage)).Inc()
	}
	if v, ok := out.(*pipeline.Verdict); ok && outcome == "published" {
		m.decisions.WithLabelValues(string(v.Decision)).Inc()
		for _, j := range v.Judges {
			switch {
			case j.Structured:
				m.answers.WithLabelValues(j.Name, "structured").Inc()
			case !j.Abstained || j.AbstainReason == pipeline.ReasonJudgeAbstained:
				m.answers.WithLabelValues(j.Name, "text").Inc()
			}
			if j.Abstained {
				m.abstentions.WithLabelValues(j.Name, j.AbstainKind).Inc()
				if j.AbstainKind == pipeline.AbstainAnswer && j.AbstainReason != pipeline.ReasonJudgeAbstained { // an answer in no readable shape
					m.callErrors.WithLabelValues(string(pipeline.TierReasoning), j.Provider, j.Model, "parse").Inc()
				}
			}
		}
	}
}

// watchLag polls each stage consumer's info into the lag gauges until ctx ends.
func (m *metrics) watchLag(ctx context.Context, js jetstream.JetStream, stages []pipeline.Stage, window, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m.readAgents(ctx, js, window)
		for _, st := range stages {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, err := js.Consumer(ictx, consumers.StreamThoughts, string(st))
			if err == nil {
				var info *jetstream.ConsumerInfo
				if info, err = c.Info(ictx); err == nil {
					m.pending.WithLabelValues(string(st)).Set(float64(info.NumPending))
					m.ackPending.WithLabelValues(string(st)).Set(float64(info.NumAckPending))
					m.redeliverQ.WithLabelValues(string(st)).Set(float64(info.NumRedelivered))
					m.waiting.WithLabelValues(string(st)).Set(float64(info.NumWaiting))
				}
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readAgents sets the per-agent gauges: the MetricsAgents agents that hold
// the most thoughts, and the rest summed as "_other".
func (m *metrics) readAgents(ctx context.Context, js jetstream.JetStream, window time.Duration) {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	agents, _, err := consumers.ReadAgentUse(ictx, js, window)
	if err != nil {
		return
	}
	for _, g := range []*prometheus.GaugeVec{m.agentThoughts, m.agentRequests, m.agentUSD} {
		g.Reset()
	}
	var other shared.AgentUse
	for i, a := range agents {
		if i >= MetricsAgents {
			other.Thoughts, other.Requests, other.USD = other.Thoughts+a.Thoughts, other.Requests+a.Requests, other.USD+a.USD
			continue
		}
		m.agentThoughts.WithLabelValues(a.Agent).Set(float64(a.Thoughts))
		m.agentRequests.WithLabelValues(a.Agent).Set(a.Requests)
		m.agentUSD.WithLabelValues(a.Agent).Set(a.USD)
	}
	if len(agents) > MetricsAgents {
		m.agentThoughts.WithLabelValues("_other").Set(float64(other.Thoughts))
		m.agentRequests.WithLabelValues("_other").Set(other.Requests)
		m.agentUSD.WithLabelValues("_other").Set(other.USD)
	}
}

// watchPool exports a pool's concurrency limit and the thoughts it has in flight.
func (m *metrics) watchPool(stage pipeline.Stage, pool *consumers.Pool) {
	labels := prometheus.Labels{"stage": string(stage)}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "noesis_pool_concurrency_limit", Help: "The pool's concurrency limit (adaptive unless NOESIS_<TIER>_CONCURRENCY fixes it).", ConstLabels: labels},
			func() float64 { return float64(pool.Limit().Limit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "noesis_pool_in_flight", Help: "Thoughts the pool is working on.", ConstLabels: labels},
			func() float64 { return float64(pool.Limit().InFlight) }))
}
