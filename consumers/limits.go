package consumers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// KVLimits implements the router's Limiter. It keeps the limits that hold across every worker process in NATS
// KV: requests and tokens per target per window (fixed windows, aligned to the
// clock), and spend per provider per calendar month. Counters are updated with
// compare-and-set, so concurrent workers never lose an increment. Safe for
// concurrent use.
type KVLimits struct {
	rate, spend jetstream.KeyValue
	window      time.Duration
	log         zerolog.Logger

	mu      sync.Mutex
	spent   map[string]float64 // provider -> this month's spend, as last read
	warned  map[string]bool
	budgets map[string]float64
}

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
		budgets: budgets}
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

// add adds delta to a counter unless that would pass limit (limit <= 0: no
// limit), and returns the counter and whether it was added.
func add(ctx context.Context, kv jetstream.KeyValue, key string, delta, limit float64) (float64, bool, error) {
	for try := 0; try < 50; try++ {
		var cur float64
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			cur, _ = strconv.ParseFloat(string(e.Value()), 64)
			rev = e.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return 0, false, err
		}
		if limit > 0 && cur+delta > limit {
			return cur, false, nil
		}
		val := []byte(strconv.FormatFloat(cur+delta, 'f', -1, 64))
		if rev == 0 {
			_, err = kv.Create(ctx, key, val)
		} else {
			_, err = kv.Update(ctx, key, val, rev)
		}
		if err == nil {
			return cur + delta, true, nil
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
func (l *KVLimits) Take(ctx context.Context, target string, rpm, tpm int) error {
	for {
		idx, next := l.windowIndex()
		w := strconv.FormatInt(idx, 10)
		if tpm > 0 {
			used, _, err := add(ctx, l.rate, kvKey("tokens", target, w), 0, 0)
			if err != nil {
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
// provider's monthly budget).
func (l *KVLimits) Spend(ctx context.Context, target, provider string, tokens int, costUSD float64) {
	ctx = context.WithoutCancel(ctx)
	if tokens > 0 {
		idx, _ := l.windowIndex()
		if _, _, err := add(ctx, l.rate, kvKey("tokens", target, strconv.FormatInt(idx, 10)), float64(tokens), 0); err != nil {
			l.log.Debug().Err(err).Msg("token count not recorded")
		}
	}
	if costUSD <= 0 {
		return
	}
	total, _, err := add(ctx, l.spend, kvKey("usd", provider, time.Now().UTC().Format("2006-01")), costUSD, 0)
	if err != nil {
		l.log.Debug().Err(err).Msg("spend not recorded")
		return
	}
	l.mu.Lock()
	l.spent[provider] = total
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

// BudgetSpent reports whether provider has spent its monthly budget, as this
// process last read it (every Spend reads the shared total).
func (l *KVLimits) BudgetSpent(provider string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.budgets[provider]
	return b > 0 && l.spent[provider] >= b
}

// Refresh reads every budgeted provider's shared spend, for a process that
// starts after others have spent.
func (l *KVLimits) Refresh(ctx context.Context) {
	for p := range l.budgets {
		total, _, err := add(ctx, l.spend, kvKey("usd", p, time.Now().UTC().Format("2006-01")), 0, 0)
		if err == nil {
			l.mu.Lock()
			l.spent[p] = total
			l.mu.Unlock()
		}
	}
}
