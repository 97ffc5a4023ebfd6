package shared

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

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
func (l *Limits) Admit(ctx context.Context, agent string, rpm, tpm int, usd, reserveUSD float64) error {
	if usd > 0 && reserveUSD > 0 { // a call that costs nothing spends no budget
		spent, err := l.readCounter(ctx, l.spend, agentSpendKey(agent))
		if err != nil {
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
		used, err := l.readCounter(ctx, l.rate, agentKey("tokens", agent, w))
		if err != nil {
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
func (l *Limits) SettleAgent(ctx context.Context, agent string, tokens int, costUSD, reservedUSD float64) {
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
