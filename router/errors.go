package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/pipeline"
)

// ErrorClass names the kind of a call error for metrics: timeout,
// rate_limited, server (5xx), client (4xx), canceled, budget, or other.
func ErrorClass(err error) string {
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	status := 0
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
	}
	msg := err.Error()
	switch {
	case errors.Is(err, pipeline.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, pipeline.ErrBudgetExhausted):
		return "budget"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "no answer within"):
		return "timeout"
	case status >= 500 || strings.Contains(msg, "HTTP 5"):
		return "server"
	case status >= 400 || strings.Contains(msg, "HTTP 4"):
		return "client"
	}
	return "other"
}

// breaks reports whether an error says the target is broken (and counts
// toward its breaker): timeouts, 5xx, lost connections; not 429 (busy), not
// 4xx (our request), not a cancelled call or an exhausted budget.
func breaks(err error) bool {
	switch ErrorClass(err) {
	case "timeout", "server", "other":
		return true
	}
	return false
}

// andThen reports why the tries stopped after the last try's error.
func andThen(last, stop error) error {
	if last == nil {
		return stop
	}
	return fmt.Errorf("%w; then %w", last, stop)
}

// classify maps a call error to transient or permanent, with secrets redacted.
func (c *Chain) classify(ctx context.Context, t *target, err error, timeout time.Duration) error {
	where := fmt.Sprintf("%s (%s at %s)", t.Model, t.Name, t.provider.Name)
	status := 0
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
	}
	msg := c.redact.Replace(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("%w: %s: no answer within %s", pipeline.ErrTransient, where, timeout)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %s: %w", pipeline.ErrTransient, where, context.Canceled)
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("%w: %w: %s: HTTP %d: %s", pipeline.ErrTransient, pipeline.ErrRateLimited, where, status, msg)
	case status == http.StatusRequestTimeout || status >= 500:
		return fmt.Errorf("%w: %s: HTTP %d: %s", pipeline.ErrTransient, where, status, msg)
	case status >= 400:
		return fmt.Errorf("%w: %s: HTTP %d: %s", pipeline.ErrPermanent, where, status, msg)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w: %s: network: %s", pipeline.ErrTransient, where, msg)
	}
	return fmt.Errorf("%w: %s: %s", pipeline.ErrTransient, where, msg)
}
