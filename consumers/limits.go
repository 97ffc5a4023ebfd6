package consumers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// KVLimits implements the router's Limiter. It keeps the limits that hold across every worker process in NATS
// KV: requests and tokens per target per window (fixed windows, aligned to the
// clock), and spend per provider per calendar month. Counters are updated with
// compare-and-set, so concurrent workers never lose an increment. Safe for
// concurrent use.
//
// A counter fails closed: one whose value does not read as a number of zero
// or more (ErrBadCounter) is never taken for "nothing spent" and never
// overwritten. A rate counter's Take returns the error, so the call is
// refused until the window ends (its key is the window's); a provider whose
// spend counter cannot be read counts as having spent its budget, and
// BudgetSpent reads the counter again every second while it does, so calls
// resume once an operator repairs the key. A provider with no budget keeps
// calling; its unreadable counter is logged only. Each unreadable key is
// logged at error level, at most once a minute.
type KVLimits struct {
	rate, spend jetstream.KeyValue
	window      time.Duration
	log         zerolog.Logger

	mu         sync.Mutex
	spent      map[string]float64   // provider -> this month's spend, as last read
	unreadable map[string]error     // provider -> why its spend counter could not be read, when it could not
	checked    map[string]time.Time // provider -> when BudgetSpent last read its counter again
	reported   map[string]time.Time // counter key -> when its bad value was last logged
	warned     map[string]bool
	budgets    map[string]float64
}

// ErrBadCounter is what a CounterError matches with errors.Is.
var ErrBadCounter = errors.New("shared counter does not hold a number of zero or more")

// CounterError is a shared counter whose value is not a number of zero or
// more. It matches ErrBadCounter.
type CounterError struct {
	Bucket, Key string
	Value       string // the first 64 bytes of what the key holds
}

func (e *CounterError) Error() string {
	return fmt.Sprintf("%v: %s in bucket %s holds %q", ErrBadCounter, e.Key, e.Bucket, e.Value)
}

// Unwrap returns ErrBadCounter.
func (e *CounterError) Unwrap() error { return ErrBadCounter }

// budgetRecheck is how often BudgetSpent reads a spent or unreadable
// provider's counter again: a new month, or a repaired key, lets its calls
// through within it.
const budgetRecheck = time.Second

// Limit buckets.
const (
	RateBucket  = "noesis_rate"
	SpendBucket = "noesis_spend"
)

// NewKVLimits creates or updates the buckets. window is the rate window
// (one minute for requests and tokens per minute); budgets are USD per
// provider per month (0 or absent: none).
func NewKVLimits(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig, window time.Duration, budgets map[string]float64, log zerolog.Logger) (*KVLimits, error) {
	cfg = cfg.withDefaults()
	l := &KVLimits{window: window, log: log.With().Str("component", "limits").Logger(), spent: map[string]float64{}, warned: map[string]bool{},
		unreadable: map[string]error{}, checked: map[string]time.Time{}, reported: map[string]time.Time{}, budgets: budgets}
	for _, b := range []struct {
		name string
		ttl  time.Duration
		dst  *jetstream.KeyValue
	}{{RateBucket, 3 * window, &l.rate}, {SpendBucket, 0, &l.spend}} {
		err := retryUnavailable(ctx, "bucket "+b.name, func(ctx context.Context) (err error) {
			*b.dst, err = ensureBucket(ctx, js, jetstream.KeyValueConfig{Bucket: b.name, Description: "noesis: limits shared by every worker",
				TTL: b.ttl, Storage: cfg.Storage, Replicas: cfg.Replicas, History: 1})
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

func kvKey(parts ...string) string {
	k := strings.Join(parts, ".")
	b := []byte(k)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '=') {
			b[i] = '_'
		}
	}
	return string(b)
}

// counter reads a counter: its value and revision, 0 and 0 when the key is
// absent (or deleted). A value that is not a number of zero or more is
// ErrBadCounter.
func counter(ctx context.Context, kv jetstream.KeyValue, key string) (float64, uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	v, err := strconv.ParseFloat(string(e.Value()), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, e.Revision(), &CounterError{Bucket: kv.Bucket(), Key: key, Value: clipBytes(string(e.Value()), 64)}
	}
	return v, e.Revision(), nil
}

// add adds delta to a counter unless that would pass limit (limit <= 0: no
// limit), and returns the counter and whether it was added. A counter that
// does not read (ErrBadCounter) is left as it is.
func add(ctx context.Context, kv jetstream.KeyValue, key string, delta, limit float64) (float64, bool, error) {
	for try := 0; try < 50; try++ {
		cur, rev, err := counter(ctx, kv, key)
		if err != nil {
			return 0, false, err
		}
		if limit > 0 && cur+delta > limit {
			return cur, false, nil
		}
		next := cur + delta
		if delta < 0 && next < 1e-12 {
			next = 0 // a refund never takes a counter below 0 (nor leaves float dust)
		}
		val := []byte(strconv.FormatFloat(next, 'f', -1, 64))
		if rev == 0 {
			_, err = kv.Create(ctx, key, val)
		} else {
			_, err = kv.Update(ctx, key, val, rev)
		}
		if err == nil {
			return next, true, nil
		}
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		// Another worker moved the counter first: read it again.
	}
	return 0, false, fmt.Errorf("counter %s: too much contention", key)
}

func (l *KVLimits) windowIndex() (int64, time.Time) {
	n := time.Now().UnixNano() / int64(l.window)
	return n, time.Unix(0, (n+1)*int64(l.window))
}

// Take waits until target may make one more request in the current window.
// It returns ctx's error, a NATS error, or ErrBadCounter when the window's
// counter cannot be read: the call is refused then, not let through.
func (l *KVLimits) Take(ctx context.Context, target string, rpm, tpm int) error {
	for {
		idx, next := l.windowIndex()
		w := strconv.FormatInt(idx, 10)
		if tpm > 0 {
			used, _, err := counter(ctx, l.rate, kvKey("tokens", target, w))
			if err != nil {
				l.reportBad(err)
				return err
			}
			if used >= float64(tpm) {
				if err := sleepUntil(ctx, next); err != nil {
					return err
				}
				continue
			}
		}
		if rpm <= 0 {
			return nil
		}
		_, ok, err := add(ctx, l.rate, kvKey("requests", target, w), 1, float64(rpm))
		if err != nil || ok {
			l.reportBad(err)
			return err
		}
		if err := sleepUntil(ctx, next); err != nil {
			return err
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Spend records a call's tokens (for tokens per minute) and cost (for the
// provider's monthly budget). A spend counter that cannot be read is not
// written, and its provider counts as having spent its budget.
func (l *KVLimits) Spend(ctx context.Context, target, provider string, tokens int, costUSD float64) {
	ctx = context.WithoutCancel(ctx)
	if tokens > 0 {
		idx, _ := l.windowIndex()
		if _, _, err := add(ctx, l.rate, kvKey("tokens", target, strconv.FormatInt(idx, 10)), float64(tokens), 0); err != nil {
			l.reportBad(err)
			l.log.Debug().Err(err).Msg("token count not recorded")
		}
	}
	if costUSD <= 0 {
		return
	}
	total, _, err := add(ctx, l.spend, spendKey(provider), costUSD, 0)
	if err != nil {
		l.noteRead(provider, 0, err)
		l.log.Debug().Err(err).Msg("spend not recorded")
		return
	}
	l.mu.Lock()
	l.spent[provider] = total
	delete(l.unreadable, provider)
	budget := l.budgets[provider]
	warn := budget > 0 && total >= 0.8*budget && !l.warned[provider]
	if warn {
		l.warned[provider] = true
	}
	l.mu.Unlock()
	if warn {
		l.log.Warn().Str("provider", provider).Float64("spent_usd", total).Float64("budget_usd", budget).Msg("provider past 80% of its monthly budget")
	}
}

// spendKey is provider's spend counter for the current calendar month (UTC).
func spendKey(provider string) string {
	return kvKey("usd", provider, time.Now().UTC().Format("2006-01"))
}

// BudgetSpent reports whether provider has spent its monthly budget, or its
// spend counter cannot be read, as this process last read it (every Spend
// reads the shared total). While it reports true, it reads the counter again
// at most every budgetRecheck, waiting up to opTimeout for NATS.
func (l *KVLimits) BudgetSpent(provider string) bool {
	l.mu.Lock()
	spent, recheck := l.spentLocked(provider), false
	if spent && time.Since(l.checked[provider]) >= budgetRecheck {
		l.checked[provider], recheck = time.Now(), true
	}
	l.mu.Unlock()
	if !recheck {
		return spent
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	l.read(ctx, provider)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spentLocked(provider)
}

func (l *KVLimits) spentLocked(provider string) bool {
	b := l.budgets[provider]
	return b > 0 && (l.unreadable[provider] != nil || l.spent[provider] >= b)
}

// Refresh reads every budgeted provider's shared spend, for a process that
// starts after others have spent, and creates the month's counter at 0
// where there is none yet (a worker that may not write the bucket shows at
// once).
func (l *KVLimits) Refresh(ctx context.Context) {
	for p := range l.budgets {
		total, _, err := add(ctx, l.spend, spendKey(p), 0, 0)
		if err != nil && !errors.Is(err, ErrBadCounter) {
			l.log.Warn().Err(err).Str("provider", p).Msg("spend not read")
			continue
		}
		l.noteRead(p, total, err)
	}
}

// read reads provider's shared spend into this process's view. A counter
// that does not read marks the provider unreadable; NATS failing leaves the
// view as it was.
func (l *KVLimits) read(ctx context.Context, provider string) {
	total, _, err := counter(ctx, l.spend, spendKey(provider))
	if err != nil && !errors.Is(err, ErrBadCounter) {
		l.log.Warn().Err(err).Str("provider", provider).Msg("spend not read")
		return
	}
	l.noteRead(provider, total, err)
}

// noteRead records a read of provider's spend counter: its total, or with
// ErrBadCounter that it cannot be read (logged). Other errors change nothing.
func (l *KVLimits) noteRead(provider string, total float64, err error) {
	if err != nil && !errors.Is(err, ErrBadCounter) {
		return
	}
	l.mu.Lock()
	if err != nil {
		l.unreadable[provider] = err
	} else {
		l.spent[provider] = total
		delete(l.unreadable, provider)
	}
	l.mu.Unlock()
	l.reportBad(err)
}

// reportBad logs a CounterError at error level, once a minute per key at
// most (every call it refuses would log it otherwise); other errors it leaves
// to the caller.
func (l *KVLimits) reportBad(err error) {
	var ce *CounterError
	if !errors.As(err, &ce) {
		return
	}
	key := ce.Bucket + "/" + ce.Key
	now := time.Now()
	l.mu.Lock()
	if last, ok := l.reported[key]; ok && now.Sub(last) < time.Minute {
		l.mu.Unlock()
		return
	}
	if len(l.reported) >= 1024 {
		for k, t := range l.reported {
			if now.Sub(t) >= time.Minute {
				delete(l.reported, k)
			}
		}
	}
	l.reported[key] = now
	l.mu.Unlock()
	l.log.Error().Err(err).Str("bucket", ce.Bucket).Str("key", ce.Key).
		Msg("shared limit counter unreadable: counted as spent, not reset, until it is repaired (nats kv put, or nats kv del to reset it)")
}

// agentKey is one of agent's counters: "agent.<what>.<agent>.<period>".
func agentKey(what, agent, period string) string { return kvKey("agent", what, agent, period) }

// agentSpendKey is agent's spend counter for the current calendar month (UTC).
func agentSpendKey(agent string) string {
	return agentKey("usd", agent, time.Now().UTC().Format("2006-01"))
}

// reserveWait is how long a call waits when its agent's calls in flight may
// spend the rest of its budget: until some of them settle.
const reserveWait = 250 * time.Millisecond

// agentReservedKey is agent's counter of the cost its calls in flight may
// reach this month.
func agentReservedKey(agent string) string {
	return agentKey("reserved", agent, time.Now().UTC().Format("2006-01"))
}

// Admit lets one more model request of agent's through, summed over every
// worker: the month's spend under usd, this window's tokens under tpm and
// its requests under rpm (0: no limit) (counted only when let through). Past
// the budget the error wraps pipeline.ErrQuota and pipeline.ErrPermanent;
// past a window's requests or tokens, pipeline.ErrQuota,
// pipeline.ErrRateLimited and pipeline.ErrTransient in a RetryAfterError
// that says when the window ends. A counter that does not read refuses the
// call (ErrBadCounter).
func (l *KVLimits) Admit(ctx context.Context, agent string, rpm, tpm int, usd, reserveUSD float64) error {
	if usd > 0 && reserveUSD > 0 { // a call that costs nothing spends no budget
		spent, _, err := counter(ctx, l.spend, agentSpendKey(agent))
		if err != nil {
			l.reportBad(err)
			return err
		}
		if spent >= usd {
			return fmt.Errorf("%w: %w: agent %s has spent its monthly budget (%.4f of %.4f USD)", pipeline.ErrPermanent, pipeline.ErrQuota, agent, spent, usd)
		}
		// The reservation is counted now and given back when the call is
		// settled, so the calls of every worker in flight together cannot
		// pass the budget; past it, the call waits for others to settle.
		// One call alone is let through whatever it reserves.
		_, ok, err := add(ctx, l.spend, agentReservedKey(agent), reserveUSD, max(usd-spent, reserveUSD))
		if err != nil {
			l.reportBad(err)
			return err
		}
		if !ok {
			return &pipeline.RetryAfterError{After: reserveWait, Err: fmt.Errorf("%w: %w: %w: agent %s's calls in flight may spend the rest of its monthly budget (%.4f of %.4f USD spent)",
				pipeline.ErrTransient, pipeline.ErrRateLimited, pipeline.ErrQuota, agent, spent, usd)}
		}
	}
	refund := func() {
		if usd > 0 && reserveUSD > 0 { // as reserved above
			l.SettleAgent(ctx, agent, 0, 0, reserveUSD)
		}
	}
	idx, next := l.windowIndex()
	w := strconv.FormatInt(idx, 10)
	over := func(what string, limit int) error {
		return &pipeline.RetryAfterError{After: time.Until(next) + time.Millisecond,
			Err: fmt.Errorf("%w: %w: %w: agent %s is past its %d %s per %s", pipeline.ErrTransient, pipeline.ErrRateLimited, pipeline.ErrQuota, agent, limit, what, l.window)}
	}
	if tpm > 0 {
		used, _, err := counter(ctx, l.rate, agentKey("tokens", agent, w))
		if err != nil {
			l.reportBad(err)
			return err
		}
		if used >= float64(tpm) {
			refund()
			return over("tokens", tpm)
		}
	}
	if rpm > 0 {
		_, ok, err := add(ctx, l.rate, agentKey("requests", agent, w), 1, float64(rpm))
		if err != nil {
			refund()
			l.reportBad(err)
			return err
		}
		if !ok {
			refund()
			return over("requests", rpm)
		}
	}
	return nil
}

// SettleAgent records an admitted call of agent's: its tokens in this
// window's counter, and its cost in the month's in place of the reservation
// Admit counted (a failed call costs 0: the reservation is given back). A
// counter that does not read is not written (Admit then refuses the agent's
// calls).
func (l *KVLimits) SettleAgent(ctx context.Context, agent string, tokens int, costUSD, reservedUSD float64) {
	ctx = context.WithoutCancel(ctx)
	if tokens > 0 {
		idx, _ := l.windowIndex()
		if _, _, err := add(ctx, l.rate, agentKey("tokens", agent, strconv.FormatInt(idx, 10)), float64(tokens), 0); err != nil {
			l.reportBad(err)
		}
	}
	if reservedUSD > 0 {
		if _, _, err := add(ctx, l.spend, agentReservedKey(agent), -reservedUSD, 0); err != nil {
			l.reportBad(err)
		}
	}
	if costUSD > 0 {
		if _, _, err := add(ctx, l.spend, agentSpendKey(agent), costUSD, 0); err != nil {
			l.reportBad(err)
		}
	}
}

// AgentUse is what one agent holds and used, summed over every worker: its
// thoughts held in NOESIS_THOUGHTS, this window's requests and tokens and
// this month's spend.
type AgentUse struct {
	Agent    string  `json:"agent"`
	Thoughts uint64  `json:"thoughts_held"`
	Requests float64 `json:"requests_this_window"`
	Tokens   float64 `json:"tokens_this_window"`
	USD      float64 `json:"usd_this_month"`
}

// ReadAgentUse reads every agent's thoughts held and use from the thoughts
// stream and the shared counters, most thoughts held first (then most spent,
// most requests). An unreadable counter is left out and returned among the
// errors.
func ReadAgentUse(ctx context.Context, js jetstream.JetStream, window time.Duration) ([]AgentUse, []error, error) {
	use := map[string]*AgentUse{}
	get := func(a string) *AgentUse {
		if use[a] == nil {
			use[a] = &AgentUse{Agent: a}
		}
		return use[a]
	}
	var bad []error
	if st, err := js.Stream(ctx, StreamThoughts); err == nil {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(ThoughtsPrefix+"*"))
		if err != nil {
			return nil, nil, err
		}
		for subj, n := range info.State.Subjects {
			get(strings.TrimPrefix(subj, ThoughtsPrefix)).Thoughts = n
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, err
	}
	month := time.Now().UTC().Format("2006-01")
	w := strconv.FormatInt(time.Now().UnixNano()/int64(window), 10)
	for _, b := range []struct {
		bucket string
		read   func(what, agent, period string, v float64)
	}{
		{SpendBucket, func(what, a, period string, v float64) {
			if what == "usd" && period == month {
				get(a).USD = v
			}
		}},
		{RateBucket, func(what, a, period string, v float64) {
			switch {
			case period != w:
			case what == "requests":
				get(a).Requests = v
			case what == "tokens":
				get(a).Tokens = v
			}
		}},
	} {
		kv, err := js.KeyValue(ctx, b.bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		keys, err := kv.ListKeys(ctx, jetstream.MetaOnly())
		if err != nil {
			return nil, nil, err
		}
		for k := range keys.Keys() {
			parts := strings.Split(k, ".")
			if len(parts) != 4 || parts[0] != "agent" {
				continue
			}
			v, _, err := counter(ctx, kv, k)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			b.read(parts[1], parts[2], parts[3], v)
		}
	}
	out := make([]AgentUse, 0, len(use))
	for _, u := range use {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b AgentUse) int {
		if c := cmp.Compare(b.Thoughts, a.Thoughts); c != 0 {
			return c
		}
		if c := cmp.Compare(b.USD, a.USD); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Requests, a.Requests); c != 0 {
			return c
		}
		return strings.Compare(a.Agent, b.Agent)
	})
	return out, bad, nil
}
