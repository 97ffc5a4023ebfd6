package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
)

// StreamResult is what one streamed call measured.
type StreamResult struct {
	TTFT             time.Duration // request sent to first content token
	Latency          time.Duration // request sent to the end of the stream
	CompletionTokens int           // from the provider's usage when it sends one, else the content chunks
	Content          string
}

// TokensPerSecond is the call's output throughput: tokens over the whole latency,
// as the seed report measured it.
func (r StreamResult) TokensPerSecond() float64 {
	if r.Latency <= 0 {
		return 0
	}
	return float64(r.CompletionTokens) / r.Latency.Seconds()
}

// Prober makes single streamed calls to one provider, for benchmarks. Safe for concurrent use.
type Prober struct {
	client *openai.Client
	redact *strings.Replacer
	name   string
}

// NewProber returns a prober for p over its own tuned HTTP client.
func NewProber(p router.Provider, idlePerHost int) *Prober {
	oc := openai.DefaultConfig(p.APIKey)
	oc.BaseURL = strings.TrimRight(p.BaseURL, "/")
	oc.HTTPClient = router.NewHTTPClient(idlePerHost, p.Kind == router.KindSim)
	r := strings.NewReplacer()
	if len(p.APIKey) >= 4 {
		r = strings.NewReplacer(p.APIKey, "[REDACTED]")
	}
	return &Prober{client: openai.NewClientWithConfig(oc), redact: r, name: p.Name}
}

// Stream sends one streamed chat completion and times it. maxTokens 0 leaves
// the limit to the provider.
func (p *Prober) Stream(ctx context.Context, model string, msgs []pipeline.Message, maxTokens int) (StreamResult, error) {
	var res StreamResult
	// max_tokens: the field every OpenAI-compatible server reads (see router/openai.go).
	req := openai.ChatCompletionRequest{Model: model, Stream: true, MaxTokens: maxTokens, Temperature: 1e-45, //lint:ignore SA1019 see above
		StreamOptions: &openai.StreamOptions{IncludeUsage: true}}
	for _, m := range msgs {
		req.Messages = append(req.Messages, openai.ChatCompletionMessage{Role: string(m.Role), Content: m.Content})
	}
	start := time.Now()
	st, err := p.client.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return res, fmt.Errorf("%s %s: %s", p.name, model, p.redact.Replace(err.Error()))
	}
	defer st.Close()
	var b strings.Builder
	chunks := 0
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("%s %s: stream: %s", p.name, model, p.redact.Replace(err.Error()))
		}
		if r.Usage != nil {
			res.CompletionTokens = r.Usage.CompletionTokens
		}
		if len(r.Choices) > 0 {
			if d := r.Choices[0].Delta; d.Content != "" || d.ReasoningContent != "" {
				if chunks == 0 {
					res.TTFT = time.Since(start)
				}
				chunks++
				b.WriteString(d.Content)
			}
		}
	}
	res.Latency = time.Since(start)
	if res.CompletionTokens == 0 {
		res.CompletionTokens = chunks
	}
	res.Content = b.String()
	return res, nil
}

// Models lists the provider's models (GET /models).
func (p *Prober) Models(ctx context.Context) ([]string, error) {
	list, err := p.client.ListModels(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: list models: %s", p.name, p.redact.Replace(err.Error()))
	}
	out := make([]string, 0, len(list.Models))
	for _, m := range list.Models {
		out = append(out, m.ID)
	}
	return out, nil
}
