package shared

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline/retry"
)

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
		return 0, e.Revision(), &CounterError{Bucket: kv.Bucket(), Key: key, Value: clip(string(e.Value()), 64)}
	}
	return v, e.Revision(), nil
}

// casPolicy is how a counter's compare-and-set is tried again when another
// worker moved the counter first: at most 50 tries, waiting from 1 ms,
// doubling to 50 ms, ±20 %.
var casPolicy = retry.Policy{Initial: time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxTries: 50}

// add adds delta to a counter unless that would pass limit (limit <= 0: no
// limit), and returns the counter and whether it was added. A counter that
// does not read (ErrBadCounter) is left as it is.
func add(ctx context.Context, kv jetstream.KeyValue, key string, delta, limit float64) (float64, bool, error) {
	type result struct {
		value float64
		added bool
	}
	r, err := retry.Do(ctx, casPolicy, func() (result, error) {
		cur, rev, err := counter(ctx, kv, key)
		if err != nil {
			return result{}, retry.Permanent(err)
		}
		if limit > 0 && cur+delta > limit {
			return result{cur, false}, nil
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
		switch {
		case err == nil:
			return result{next, true}, nil
		case ctx.Err() != nil:
			return result{}, retry.Permanent(ctx.Err())
		}
		return result{}, errContended // another worker moved the counter first: read it again
	})
	if errors.Is(err, errContended) {
		return 0, false, fmt.Errorf("counter %s: too much contention", key)
	}
	if err != nil {
		return 0, false, err
	}
	return r.value, r.added, nil
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
