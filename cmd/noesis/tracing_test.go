package main

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/router/sim"
)

// otlpReceiver is a minimal OTLP/HTTP trace receiver: it keeps span names by trace id.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string][]string
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	var ex coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &ex); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	r.mu.Lock()
	for _, rs := range ex.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				id := hex.EncodeToString(sp.TraceId)
				r.spans[id] = append(r.spans[id], sp.Name)
			}
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

// A thought's traceparent reaches its outputs, and with an OTLP endpoint set
// each stage and each model call is a span of that trace.
func TestTraceContextAndSpans(t *testing.T) {
	recv := &otlpReceiver{spans: map[string][]string{}}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	r := newRig(t, sim.Config{})
	r.cfg.OTLPEndpoint = collector.URL
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	ctx, cancel := context.WithCancel(context.Background())
	svc := startService(t, ctx, r.cfg)
	got := collect(t, r.nc)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	publishTraced(t, r, "a traced thought", "00-"+traceID+"-00f067aa0ba902b7-01")
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})
	for _, root := range []string{"narratives", "verdicts"} {
		tp := got.messages(root)[0].Header.Get("traceparent")
		if !strings.HasPrefix(tp, "00-"+traceID+"-") || strings.Contains(tp, "00f067aa0ba902b7") {
			t.Errorf("%s traceparent %q: want the thought's trace and the stage's own span", root, tp)
		}
	}
	cancel()
	if err := svc.Wait(); err != nil { // flushes the spans
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	names := strings.Join(recv.spans[traceID], ",")
	for _, want := range []string{"noesis narrative", "noesis tribunal"} {
		if !strings.Contains(names, want) {
			t.Errorf("span %q missing from the trace: %s", want, names)
		}
	}
	if n := strings.Count(names, "model call"); n != 4 {
		t.Errorf("%d model call spans in the trace, want 4 (1 narrative + 3 judges): %s", n, names)
	}
}

// Without an OTLP endpoint no span is made, and a thought's traceparent
// still reaches its outputs as it came: whoever traces the agent finds them
// in its trace.
func TestTraceContextWithoutOTLP(t *testing.T) {
	r := newRig(t, sim.Config{})
	runService(t, r.cfg)
	got := collect(t, r.nc)
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	publishTraced(t, r, "a traced thought, no collector", parent)
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})
	for _, root := range []string{"narratives", "verdicts"} {
		if tp := got.messages(root)[0].Header.Get("traceparent"); tp != parent {
			t.Errorf("%s traceparent %q, want the thought's %q", root, tp, parent)
		}
	}
}

// publishTraced publishes a thought of text with a W3C traceparent header,
// as a traced agent does.
func publishTraced(t *testing.T, r *rig, text, traceparent string) {
	t.Helper()
	th := thought(1, text)
	th.Content.Depth = 1
	data, _ := json.Marshal(th)
	m := nats.NewMsg(consumers.ThoughtSubject(th.AgentID))
	m.Data = data
	m.Header.Set("traceparent", traceparent)
	if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}
