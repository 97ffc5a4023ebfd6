package shared

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

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

// ReadAgentUse reads every agent's use from the shared counters and joins it
// with held, the thoughts each agent holds in NOESIS_THOUGHTS; most thoughts
// held first (then most spent, most requests). An unreadable counter is left
// out and returned among the errors. When ctx ends before the reading is
// whole, it returns ctx's error: a reading cut short would give the agents
// it missed nothing used.
func ReadAgentUse(ctx context.Context, js jetstream.JetStream, window time.Duration, held map[string]uint64) ([]AgentUse, []error, error) {
	use := map[string]*AgentUse{}
	get := func(a string) *AgentUse {
		if use[a] == nil {
			use[a] = &AgentUse{Agent: a}
		}
		return use[a]
	}
	var bad []error
	for agent, n := range held {
		get(agent).Thoughts = n
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
		keys, err := listKeys(ctx, kv)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range keys {
			parts := strings.Split(k, ".")
			if len(parts) != 4 || parts[0] != "agent" {
				continue
			}
			v, _, err := counter(ctx, kv, k)
			if err != nil && ctx.Err() != nil {
				// Cut off, not a bad counter: a reading with the rest as 0
				// would say so (the metrics read again next time).
				return nil, nil, ctx.Err()
			}
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
