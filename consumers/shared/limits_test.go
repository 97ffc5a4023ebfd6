package shared_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/shared"
)

// badCounters are values a counter must never read as a number: what an
// agent's PubAck wrote over one, text, nothing, and numbers no spend can be.
var badCounters = []struct{ name, value string }{
	{"puback", `{"stream":"NOESIS_THOUGHTS","seq":7}`},
	{"text", "garbage"},
	{"empty", ""},
	{"nan", "NaN"},
	{"negative", "-40"},
	{"infinite", "+Inf"},
}

// A monthly spend counter that does not read as a number is a spent budget,
// never a reset one: it is not overwritten, the provider's calls are refused
// (in a process that was running and in one that starts after), the error
// names the key, and calls resume once the key is repaired.
func TestUnreadableSpendCounterCountsAsSpent(t *testing.T) {
	js := natstest.JetStream(t)
	ctx := context.Background()
	for i, bad := range badCounters {
		t.Run(bad.name, func(t *testing.T) {
			provider := fmt.Sprintf("prov%d", i)
			budgets := map[string]float64{provider: 10}
			var logs lockedBuffer
			l, err := shared.NewLimits(ctx, js, shared.BucketConfig{}, time.Minute, budgets, zerolog.New(&logs))
			if err != nil {
				t.Fatal(err)
			}
			l.Spend(ctx, "t", provider, 0, 8)
			if l.BudgetSpent(provider) {
				t.Fatal("8 of 10 USD reads as spent")
			}
			kv, err := js.KeyValue(ctx, shared.SpendBucket)
			if err != nil {
				t.Fatal(err)
			}
			key := "usd." + provider + "." + time.Now().UTC().Format("2006-01")
			if _, err := kv.Put(ctx, key, []byte(bad.value)); err != nil {
				t.Fatal(err)
			}

			l.Spend(ctx, "t", provider, 0, 1) // a call answered meanwhile
			if v := kvValue(t, kv, key); v != bad.value {
				t.Errorf("counter %q overwritten with %q", bad.value, v)
			}
			if !l.BudgetSpent(provider) {
				t.Errorf("counter %q: the running process reads the budget as not spent", bad.value)
			}
			later, err := shared.NewLimits(ctx, js, shared.BucketConfig{}, time.Minute, budgets, zerolog.New(&logs))
			if err != nil {
				t.Fatal(err)
			}
			later.Refresh(ctx)
			if !later.BudgetSpent(provider) {
				t.Errorf("counter %q: a process started after reads the budget as not spent", bad.value)
			}
			if out := logs.String(); !strings.Contains(out, `"level":"error"`) || !strings.Contains(out, key) {
				t.Errorf("no error logged naming %s:\n%s", key, out)
			}

			if _, err := kv.Put(ctx, key, []byte("9")); err != nil { // the operator repairs it
				t.Fatal(err)
			}
			natstest.Eventually(t, 5*time.Second, func() bool { return !l.BudgetSpent(provider) && !later.BudgetSpent(provider) },
				func() string { return "the budget still reads as spent after the counter was repaired to 9 of 10" })
		})
	}
}

// A rate counter that does not read as a number refuses the call, with an
// error naming its key, and is left as it is; requests and tokens alike.
func TestUnreadableRateCounterRefusesCalls(t *testing.T) {
	js := natstest.JetStream(t)
	ctx := context.Background()
	const window = time.Hour // the key is the window's: an hour leaves no window to change under the test
	var logs lockedBuffer
	l, err := shared.NewLimits(ctx, js, shared.BucketConfig{}, window, nil, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, shared.RateBucket)
	if err != nil {
		t.Fatal(err)
	}
	for i, bad := range badCounters {
		for _, kind := range []string{"requests", "tokens"} {
			target := fmt.Sprintf("%s-%d", kind, i)
			idx := time.Now().UnixNano() / int64(window)
			var keys []string
			for _, w := range []int64{idx, idx + 1} { // this window and the next, should it start meanwhile
				key := kind + "." + target + "." + strconv.FormatInt(w, 10)
				if _, err := kv.Put(ctx, key, []byte(bad.value)); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, key)
			}
			rpm, tpm := 100, 0
			if kind == "tokens" {
				rpm, tpm = 0, 1000
			}
			tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := l.Take(tctx, target, rpm, tpm)
			cancel()
			if !errors.Is(err, shared.ErrBadCounter) || !strings.Contains(err.Error(), target) {
				t.Errorf("%s counter %q: Take returned %v, want ErrBadCounter naming the key", kind, bad.value, err)
			}
			for _, key := range keys {
				if v := kvValue(t, kv, key); v != bad.value {
					t.Errorf("%s counter %q overwritten with %q", kind, bad.value, v)
				}
			}
			if out := logs.String(); !strings.Contains(out, `"level":"error"`) || !strings.Contains(out, keys[0]) && !strings.Contains(out, keys[1]) {
				t.Errorf("no error logged naming %s:\n%s", keys[0], out)
			}
		}
	}
}

func kvValue(t *testing.T, kv jetstream.KeyValue, key string) string {
	t.Helper()
	e, err := kv.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return string(e.Value())
}

// lockedBuffer is a log sink safe for the limits' goroutines.
type lockedBuffer = natstest.Buffer
