package router

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// respInfoKey carries a *respInfo through a call's context to the HTTP
// client, which fills in what go-openai's errors do not keep: Retry-After.
type respInfoKey struct{}

type respInfo struct {
	purpose    string // sent as the PurposeHeader
	retryAfter time.Duration
	// sent is the client's request of the call (Chat's, from
	// chatRequests), given back by giveBack; nil after.
	sent *openai.ChatCompletionRequest
}

// giveBack gives the call's client request back to chatRequests once, when
// the client has made its body (headerDoer.Do), or after a call that failed
// before it did.
func (i *respInfo) giveBack() {
	if i.sent != nil {
		release(i.sent)
		i.sent = nil
	}
}

// PurposeHeader names who in noesis makes a call ("judge:VERITAS",
// "narrative", "analysis"): request metadata a proxy, a log or the simulator
// can read without parsing prompts.
const PurposeHeader = "X-Noesis-Purpose"

// headerDoer is the HTTP client go-openai calls through: it adds the
// provider's headers and reads what go-openai's errors do not keep.
type headerDoer struct {
	c       *http.Client
	headers map[string]string
}

// Do sends req with the provider's headers and the call's purpose, and
// keeps a failed answer's Retry-After for the call's error.
func (d headerDoer) Do(req *http.Request) (*http.Response, error) {
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	info, _ := req.Context().Value(respInfoKey{}).(*respInfo)
	if info != nil {
		info.giveBack() // its body is made: the call in flight need not hold it
		if info.purpose != "" {
			req.Header.Set(PurposeHeader, info.purpose)
		}
	}
	resp, err := d.c.Do(req)
	if resp != nil && resp.StatusCode >= 400 && info != nil {
		info.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return resp, err
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// NewHTTPClient returns a client whose transport keeps idle connections for
// the given concurrency per host (Go's default keeps 2, and re-handshakes
// under load). It speaks HTTP/2 to HTTPS endpoints that offer it (Nebius);
// with h2c it speaks HTTP/2 without TLS, which only the simulator is assumed
// to understand (a vLLM server on plain HTTP gets HTTP/1.1). Timeouts are set
// per call by context, not on the client.
func NewHTTPClient(idlePerHost int, h2c bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0 // no global cap; the per-host cap rules
	tr.MaxIdleConnsPerHost = idlePerHost
	tr.IdleConnTimeout = 90 * time.Second
	// An HTTP/1.1 connection carries one call at a time, so a worker at
	// 1,000 thoughts/s holds ~7,000 of them, each with a read and a write
	// buffer (4 KiB each by default). A call's request (~3 KiB) and answer
	// (~4 KiB with a judge's thinking) pass through 2 KiB buffers in two or
	// three reads or writes; the 4 KiB saved per connection is ~28 MB there.
	tr.ReadBufferSize, tr.WriteBufferSize = 2<<10, 2<<10
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr}
}
