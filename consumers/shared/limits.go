package shared

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/setup"
)

// Limits keeps the limits that hold across every worker process in NATS KV
// (it implements the router's shared quotas): requests and tokens per target per window (fixed windows, aligned to the
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
type Limits struct {
	kept        // its buckets, which Keep sets up again when lost
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

// budgetRecheck is how often BudgetSpent reads a spent or unreadable
// provider's counter again: a new month, or a repaired key, lets its calls
// through within it.
const budgetRecheck = time.Second

// Limit buckets.
const (
	RateBucket  = "noesis_rate"
	SpendBucket = "noesis_spend"
)

// NewLimits creates or updates the buckets, placed as cfg says. window is
// the rate window (one minute for requests and tokens per minute); budgets
// are USD per provider per month (0 or absent: none). It returns ctx's
// error, or the bucket's that could not be set up.
func NewLimits(ctx context.Context, js jetstream.JetStream, cfg BucketConfig, window time.Duration, budgets map[string]float64, log zerolog.Logger) (*Limits, error) {
	cfg = cfg.withDefaults()
	l := &Limits{window: window, log: log.With().Str("component", "limits").Logger(), spent: map[string]float64{}, warned: map[string]bool{},
		unreadable: map[string]error{}, checked: map[string]time.Time{}, reported: map[string]time.Time{}, budgets: budgets}
	for _, b := range []struct {
		name string
		ttl  time.Duration
		dst  *jetstream.KeyValue
	}{{RateBucket, 3 * window, &l.rate}, {SpendBucket, 0, &l.spend}} {
		kcfg := jetstream.KeyValueConfig{Bucket: b.name, Description: "noesis: limits shared by every worker",
			TTL: b.ttl, Storage: cfg.Storage, Replicas: cfg.Replicas, History: 1}
		err := setup.Do(ctx, "bucket "+b.name, func(ctx context.Context) (err error) {
			*b.dst, err = setup.Bucket(ctx, js, kcfg)
			return err
		})
		if err != nil {
			return nil, err
		}
		l.keep(js, kcfg)
	}
	return l, nil
}

func (l *Limits) windowIndex() (int64, time.Time) {
	n := time.Now().UnixNano() / int64(l.window)
	return n, time.Unix(0, (n+1)*int64(l.window))
}

// Take waits until target may make one more request in the current window.
// It returns ctx's error, a NATS error, or ErrBadCounter when the window's
// counter cannot be read: the call is refused then, not let through.
func (l *Limits) Take(ctx context.Context, target string, rpm, tpm int) error {
	for {
		idx, next := l.windowIndex()
		w := strconv.FormatInt(idx, 10)
		if tpm > 0 {
			used, err := l.readCounter(ctx, l.rate, kvKey("tokens", target, w))
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
func (l *Limits) Spend(ctx context.Context, target, provider string, tokens int, costUSD float64) {
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
func (l *Limits) BudgetSpent(provider string) bool {
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

func (l *Limits) spentLocked(provider string) bool {
	b := l.budgets[provider]
	return b > 0 && (l.unreadable[provider] != nil || l.spent[provider] >= b)
}

// Refresh reads every budgeted provider's shared spend, for a process that
// starts after others have spent, and creates the month's counter at 0
// where there is none yet (a worker that may not write the bucket shows at
// once).
func (l *Limits) Refresh(ctx context.Context) {
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
func (l *Limits) read(ctx context.Context, provider string) {
	total, _, err := counter(ctx, l.spend, spendKey(provider))
	if err != nil && !errors.Is(err, ErrBadCounter) {
		l.log.Warn().Err(err).Str("provider", provider).Msg("spend not read")
		return
	}
	l.noteRead(provider, total, err)
}

// noteRead records a read of provider's spend counter: its total, or with
// ErrBadCounter that it cannot be read (logged). Other errors change nothing.
func (l *Limits) noteRead(provider string, total float64, err error) {
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

// readCounter reads the counter key of kv, reporting one that does not read
// (reportBad).
func (l *Limits) readCounter(ctx context.Context, kv jetstream.KeyValue, key string) (float64, error) {
	v, _, err := counter(ctx, kv, key)
	l.reportBad(err)
	return v, err
}

// reportBad logs a CounterError at error level, once a minute per key at
// most (every call it refuses would log it otherwise); other errors it leaves
// to the caller.
func (l *Limits) reportBad(err error) {
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
