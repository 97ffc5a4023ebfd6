package retry

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy says how a failing operation is tried again. The zero Policy tries
// until ctx ends, waiting 100ms, 200ms, 400ms ... up to an hour, without jitter;
// Exponential gives the usual one. A Policy is a value: safe to copy and to
// use from many goroutines at once (each Do keeps its own state).
type Policy struct {
	// Initial is the first wait; 0 means 100ms.
	Initial time.Duration
	// Max caps each wait before jitter; 0 means an hour.
	Max time.Duration
	// Multiplier grows the wait after each try; 0 means 2.
	Multiplier float64
	// Jitter spreads each wait by ± this fraction (0.2: ±20 %); 0 means none.
	Jitter float64
	// MaxTries is the most tries, the first included; 0 means no limit.
	MaxTries int
	// MaxElapsed gives up with the last error when the next wait would end
	// past this long after the first try began; 0 means no limit.
	MaxElapsed time.Duration
	// Hint, when set, reads from a failure the least wait it asks for (a
	// provider's Retry-After); the policy's wait is used when it is longer.
	Hint func(error) (time.Duration, bool)
	// WithinDeadline gives up with the last error, rather than the
	// context's, when the next wait would outlast the context's deadline.
	WithinDeadline bool
	// OnRetry, when set, is told each failure that will be tried again and
	// the wait before the next try (for logs and metrics).
	OnRetry func(err error, wait time.Duration)
}

// Exponential is the common policy: waits from initial, doubling, capped at
// max, with ±20 % jitter, without a limit on tries or time (set MaxTries or
// MaxElapsed on the result for one).
func Exponential(initial, max time.Duration) Policy {
	return Policy{Initial: initial, Max: max, Multiplier: 2, Jitter: 0.2}
}

// Permanent marks err as not worth another try: Do returns err itself (not
// the wrapper) at once. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return backoff.Permanent(err)
}

// Do runs fn until it succeeds, returns a Permanent error, the policy gives
// up, or ctx ends; it runs fn at least once. It returns fn's result, or the
// last error (unwrapped from Permanent) when it stops on a failure, or the
// context's cause when ctx ends during a wait. Do is safe for concurrent use.
//
// The first try is made before any of the retrying is set up, since most
// succeed (every publish of a thought's outputs, nearly every model call):
// the policy's state and backoff's options were one object in ten a worker
// allocated on cache hits. A failed first try is then the first of
// backoff's tries, and counts toward MaxElapsed as it did.
func Do[T any](ctx context.Context, p Policy, fn func() (T, error)) (T, error) {
	started := time.Now()
	v, err := fn()
	if err == nil {
		return v, nil
	}
	return again(ctx, p, fn, started, v, err)
}

// DoAfter is Do after a first try the caller made itself, at started, which
// failed with err (v its value): err is read as Do reads a try's error (a
// Permanent one stops at once), and fn makes the next tries. A caller whose
// first try usually succeeds makes it outside Do, without fn's closure and
// Do's frames around it, and calls DoAfter only when it failed.
func DoAfter[T any](ctx context.Context, p Policy, fn func() (T, error), started time.Time, v T, err error) (T, error) {
	return again(ctx, p, fn, started, v, err)
}

// again is Do after a failed first try, which made v and err at started:
// that try is backoff's first, replayed, and counts toward MaxElapsed.
func again[T any](ctx context.Context, p Policy, fn func() (T, error), started time.Time, v T, err error) (T, error) {
	replayed := false
	try := func() (T, error) {
		if !replayed {
			replayed = true
			return v, err
		}
		return fn()
	}
	maxElapsed := p.MaxElapsed
	if maxElapsed > 0 {
		maxElapsed = max(maxElapsed-time.Since(started), 1) // 0 would mean no limit to backoff
	}
	w := &wait{ctx: ctx, p: p, exp: p.exponential()}
	opts := []backoff.RetryOption{backoff.WithBackOff(w), backoff.WithMaxElapsedTime(maxElapsed)}
	if p.MaxTries > 0 {
		opts = append(opts, backoff.WithMaxTries(uint(p.MaxTries)))
	}
	if p.OnRetry != nil {
		opts = append(opts, backoff.WithNotify(backoff.Notify(p.OnRetry)))
	}
	v, err = backoff.Retry(ctx, func() (T, error) {
		v, err := try()
		w.last = err
		return v, err
	}, opts...)
	if perm, ok := errors.AsType[*backoff.PermanentError](err); ok {
		err = perm.Unwrap() // a Permanent error on the last allowed try
	}
	return v, err
}

// exponential is the policy's waits, its zero fields given their defaults.
func (p Policy) exponential() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.Initial,
		RandomizationFactor: p.Jitter,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.Max,
	}
	if b.InitialInterval <= 0 {
		b.InitialInterval = 100 * time.Millisecond
	}
	if b.Multiplier <= 0 {
		b.Multiplier = 2
	}
	if b.MaxInterval <= 0 {
		b.MaxInterval = time.Hour
	}
	return b
}

// wait is a policy's wait that honours its Hint and WithinDeadline.
type wait struct {
	ctx  context.Context
	p    Policy
	last error // the last try's
	exp  *backoff.ExponentialBackOff
}

func (w *wait) Reset() { w.exp.Reset() }

func (w *wait) NextBackOff() time.Duration {
	d := w.exp.NextBackOff()
	if w.p.Hint != nil && w.last != nil {
		if h, ok := w.p.Hint(w.last); ok && h > d {
			d = h
		}
	}
	if w.p.WithinDeadline {
		if dl, ok := w.ctx.Deadline(); ok && time.Until(dl) < d {
			return backoff.Stop
		}
	}
	return d
}
