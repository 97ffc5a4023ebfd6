package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// pickFault picks the fault for a request: a marker first, else the dice.
func pickFault(d directives, c Faults, dice float64) string {
	switch {
	case d["http"] != "":
		return d["http"]
	case has(d, "hang"):
		return "hang"
	case has(d, "malformed"):
		return "malformed"
	}
	switch {
	case dice < c.ErrorRate:
		return "500"
	case dice < c.ErrorRate+c.RateLimitRate:
		return "429"
	case dice < c.ErrorRate+c.RateLimitRate+c.HangRate:
		return "hang"
	case dice < c.ErrorRate+c.RateLimitRate+c.HangRate+c.MalformedRate:
		return "malformed"
	}
	return ""
}

func has(d directives, k string) bool { _, ok := d[k]; return ok }

// stream sends the answer as server-sent events: each of the tokens after
// latency/tokens, so the whole answer takes the profile's latency and streams
// at its tokens per second.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req chatRequest, content, reasoning, finish string, tokens, promptTokens int, latency time.Duration) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported", "server_error")
		return
	}
	s.count("stream", "")
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	id := "chatcmpl-sim-" + shortHash(req.Model+content)
	send := func(delta map[string]any, finish any, usage any) {
		chunk := map[string]any{"id": id, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
		if usage != nil {
			chunk["usage"] = usage
		}
		b, _ := json.Marshal(chunk)
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
		flusher.Flush()
	}
	step := latency / time.Duration(tokens)
	start := time.Now()
	for i := 0; i < tokens; i++ {
		if !sleep(r.Context(), time.Until(start.Add(step*time.Duration(i+1)))) {
			s.cancelled.Add(1)
			return
		}
		piece := content[i*len(content)/tokens : (i+1)*len(content)/tokens]
		delta := map[string]any{"content": piece}
		if i == 0 {
			delta["role"] = "assistant"
			if reasoning != "" {
				delta["reasoning_content"] = reasoning
			}
		}
		send(delta, nil, nil)
	}
	var usage any
	if req.StreamOpts != nil && req.StreamOpts.IncludeUsage {
		usage = map[string]int{"prompt_tokens": promptTokens, "completion_tokens": tokens, "total_tokens": promptTokens + tokens}
	}
	send(map[string]any{}, finish, usage)
	_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
	flusher.Flush()
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, code string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": code, "code": code}})
}

func hash64(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.LittleEndian.Uint64(sum[:8])
}

func shortHash(s string) string { return fmt.Sprintf("%012x", hash64(s)&0xffffffffffff) }
