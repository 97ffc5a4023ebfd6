package sim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkJudgeAnswer is the simulator's own cost of one judge's answer at
// zero latency: what a bench's simulator takes from the processors the
// worker shares with it.
func BenchmarkJudgeAnswer(b *testing.B) {
	s, err := New(Config{LatencyScale: 0})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body := fmt.Sprintf(`{"model":"deepseek-ai/DeepSeek-R1-0528-fast","messages":[{"role":"system","content":"You are VERITAS, the judge of truth."},{"role":"user","content":"thought %d: I will compact the archive"}],"temperature":0.7}`, i)
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("X-Noesis-Purpose", "judge:VERITAS")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
