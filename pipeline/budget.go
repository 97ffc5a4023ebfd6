package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
)

type budgetKey struct{}

// CallBudget counts the upstream calls one thought may still make. Safe for concurrent use.
type CallBudget struct{ left atomic.Int64 }

// WithCallBudget returns a context that allows n upstream calls (n <= 0: unlimited).
func WithCallBudget(ctx context.Context, n int) (context.Context, *CallBudget) {
	if n <= 0 {
		return ctx, nil
	}
	b := &CallBudget{}
	b.left.Store(int64(n))
	return context.WithValue(ctx, budgetKey{}, b), b
}

// SpendCall takes one upstream call from ctx's budget, or fails with
// ErrBudgetExhausted (wrapping ErrTransient) when none is left.
func SpendCall(ctx context.Context) error {
	b, _ := ctx.Value(budgetKey{}).(*CallBudget)
	if b == nil {
		return nil
	}
	if b.left.Add(-1) < 0 {
		return fmt.Errorf("%w: %w", ErrTransient, ErrBudgetExhausted)
	}
	return nil
}
