package reviewui_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/cmd/internal/reviewui"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
)

// page is a NATS server from the shipped nats-auth.conf and the review page
// in front of it.
type page struct {
	ns        *server.Server
	url       string
	workerJS  jetstream.JetStream
	reviewJS  jetstream.JetStream
	adminJS   jetstream.JetStream
	reviewSeq int
}

func startPage(t *testing.T) *page {
	t.Helper()
	for k, v := range map[string]string{"NOESIS_AGENT_PASSWORD": "agent-pw", "NOESIS_WORKER_PASSWORD": "worker-pw",
		"NOESIS_ADMIN_PASSWORD": "admin-pw", "NOESIS_REVIEWER_PASSWORD": "reviewer-pw"} {
		t.Setenv(k, v)
	}
	opts, err := server.ProcessConfigFile("../../../nats-auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs, opts.PidFile = server.RANDOM_PORT, t.TempDir(), true, true, ""
	ns := natstest.RunServerWithOptions(t, opts)
	_, wjs := natstest.Connect(t, ns, nats.UserInfo("worker", "worker-pw"))
	if err := review.Ensure(context.Background(), wjs, review.Config{}); err != nil {
		t.Fatal(err)
	}
	_, rjs := natstest.Connect(t, ns, nats.UserInfo("reviewer", "reviewer-pw"))
	_, ajs := natstest.Connect(t, ns, nats.UserInfo("admin", "admin-pw"))
	srv, err := reviewui.New(reviewui.Config{Listen: "127.0.0.1:0", NATSURL: ns.ClientURL()}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("review page: %v", err)
		}
	})
	return &page{ns: ns, url: "http://" + srv.Addr(), workerJS: wjs, reviewJS: rjs, adminJS: ajs}
}

// queue stores a review as a worker's tribunal pool does, with what an agent
// wrote made hostile, and returns its id.
func (p *page) queue(t *testing.T, eventID string) string {
	t.Helper()
	p.reviewSeq++
	id := fmt.Sprintf("%016x", 0xabc000+p.reviewSeq)
	th, _ := json.Marshal(pipeline.Thought{EventID: eventID, AgentID: "daimon-1",
		Content: pipeline.Content{UserInput: `<script>window.pwned=1</script> maybe drop the old index`, Depth: 1}, Action: `DROP INDEX "x"; -- <b>bold</b>`})
	v, _ := json.Marshal(pipeline.Verdict{Meta: pipeline.Meta{EventID: eventID, AgentID: "daimon-1", Stage: pipeline.StageTribunal}, Decision: pipeline.DecisionReview,
		ConsensusScore: 0.61, RequiresHumanReview: true, OffenseLevel: pipeline.OffenseMinor, Judges: []pipeline.JudgeVote{
			{Name: "VERITAS", Pillar: "truth", Verdict: "PASS", Confidence: 0.61, Weight: 0.4, Reasoning: `it says <img src=x onerror="window.pwned=2"> and means it`, Offense: pipeline.OffenseNone},
			{Name: "SOPHIA", Pillar: "wisdom", Verdict: "PASS", Confidence: 0.6, Weight: 0.3, Reasoning: "hard to undo", Offense: pipeline.OffenseMinor},
		}})
	data, _ := json.Marshal(review.Review{ID: id, EventID: eventID, AgentID: "daimon-1", VerdictDecision: "review", QueuedAt: time.Now().UTC(), Verdict: v, Thought: th})
	if _, err := p.workerJS.Publish(context.Background(), review.QueuedSubject(id), data); err != nil {
		t.Fatal(err)
	}
	return id
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// A reviewer in headless Chromium: sees the queue, opens a review (the
// agent's markup shown as text, never run), decides it with a note (stored
// once), and sees a new review appear without a reload.
func TestReviewPageInBrowser(t *testing.T) {
	chromium := findChromium()
	if chromium == "" {
		if os.Getenv("NOESIS_BROWSER_TEST") == "1" {
			t.Fatal("NOESIS_BROWSER_TEST=1 and no chromium binary found (apt-get install chromium)")
		}
		t.Skip("no chromium binary found (apt-get install chromium); NOESIS_BROWSER_TEST=1 makes this a failure")
	}
	p := startPage(t)
	first, second := p.queue(t, "evt-browser-1"), p.queue(t, "evt-browser-2")

	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// again runs run until it runs on the page as it stands. While a
	// page loads, Chromium may replace its document (DOM.documentUpdated) or
	// its script context, and a node or context found a moment before is
	// gone: run is called again until the test's deadline.
	again := func(what string, run func() error) {
		t.Helper()
		for {
			err := run()
			gone := err != nil && (strings.Contains(err.Error(), "No node with given id") || strings.Contains(err.Error(), "Cannot find context with specified id"))
			if !gone || ctx.Err() != nil {
				must(what, err)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		again("read "+sel, func() (err error) { s, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel))); return err })
		return s
	}
	eval := func(js string) int {
		t.Helper()
		var n int
		again("evaluate "+js, func() (err error) { n, err = chromedp.Run(ctx, chromedp.Evaluate[int](js)); return err })
		return n
	}
	must("log in", chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": basic("reviewer", "reviewer-pw")}})
		return err
	})))
	must("open the queue", chromedp.Do(ctx, chromedp.Navigate(p.url+"/"), chromedp.WaitVisible(chromedp.CSS(`#waiting tr[data-id="`+second+`"]`))))
	if q := text("#waiting"); !strings.Contains(q, "evt-browser-1") || !strings.Contains(q, "evt-browser-2") {
		t.Fatalf("the queue shows %q; want both reviews", q)
	}
	must("open a review", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-id="`+first+`"] a.open`)), chromedp.WaitVisible(chromedp.CSS("#thought-input"))))
	thoughtText, judgesText := text("#thought-input"), text("#judges")
	pwned, marked := eval(`window.pwned || 0`), eval(`document.querySelectorAll("main img, main script, main b").length`)
	if !strings.Contains(thoughtText, "<script>window.pwned=1</script>") || !strings.Contains(judgesText, `<img src=x onerror="window.pwned=2">`) ||
		!strings.Contains(judgesText, "VERITAS") || !strings.Contains(judgesText, "hard to undo") || pwned != 0 || marked != 0 {
		t.Fatalf("thought %q, judges %q, pwned %d, elements from the agent's text %d; want the markup as text and nothing run", thoughtText, judgesText, pwned, marked)
	}
	must("decide", chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#note"), "the old index is still read by the reports"),
		chromedp.Click(chromedp.CSS("#fail")), chromedp.WaitVisible(chromedp.CSS("#result.ok"))))
	if result := text("#result"); !strings.Contains(result, "fail by reviewer") {
		t.Fatalf("the page says %q after deciding", result)
	}
	d, err := review.NewDesk(p.reviewJS).Decision(context.Background(), "daimon-1", first)
	if err != nil || d.Decision != review.Fail || d.Reviewer != "reviewer" || d.Note != "the old index is still read by the reports" || d.EventID != "evt-browser-1" {
		t.Fatalf("stored decision %+v (%v)", d, err)
	}
	s, err := p.adminJS.Stream(context.Background(), review.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(review.DecidedPrefix+">"))
	if err != nil || len(info.State.Subjects) != 1 || info.State.Subjects[review.DecidedSubject("daimon-1", first)] != 1 {
		t.Fatalf("decisions stored: %v (%v); want one, for %s", info.State.Subjects, err, first)
	}

	// Live: a review queued while the page is open appears without a reload.
	must("back to the queue", chromedp.Do(ctx, chromedp.Navigate(p.url+"/"), chromedp.WaitVisible(chromedp.CSS(`#decided tr[data-id="`+first+`"]`))))
	_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.getElementById("live").textContent.startsWith("live:")`, chromedp.WithPollingTimeout(20*time.Second)))
	must("the event stream opens", err)
	eval(`window.notReloaded = 42; 42`)
	third := p.queue(t, "evt-browser-3")
	must("see it appear", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#waiting tr[data-id="`+third+`"]`))))
	if eval(`window.notReloaded || 0`) != 42 {
		t.Fatal("the page was reloaded to show the new review")
	}
	if path := os.Getenv("NOESIS_REVIEW_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		must("screenshot", err)
		_ = os.WriteFile(path, png, 0o644)
	}
}

// findChromium returns Debian's chromium (or another Chrome) on PATH, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if p := filepath.Join("/usr/lib/chromium", "chromium"); fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Over plain HTTP: who gets in, the headers, forgery refused, a second
// decision answered with the first.
func TestReviewPageHTTP(t *testing.T) {
	p := startPage(t)
	id := p.queue(t, "evt-http-1")
	do := func(method, path, auth string, hdr map[string]string, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	reviewer := basic("reviewer", "reviewer-pw")
	for _, c := range []struct {
		name, auth string
		want       int
	}{
		{"no login", "", http.StatusUnauthorized},
		{"a wrong password", basic("reviewer", "nope"), http.StatusUnauthorized},
		{"an agent's login", basic("daimon-1", "agent-pw"), http.StatusForbidden},
		{"the reviewer", reviewer, http.StatusOK},
	} {
		if resp, body := do("GET", "/", c.auth, nil, ""); resp.StatusCode != c.want {
			t.Errorf("%s: %d %s; want %d", c.name, resp.StatusCode, body, c.want)
		}
	}
	resp, body := do("GET", "/review/"+id, reviewer, nil, "")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(body, "<script>window.pwned") || !strings.Contains(body, "&lt;script&gt;window.pwned=1&lt;/script&gt;") {
		t.Errorf("the agent's markup is not escaped in the page")
	}
	decision := `{"decision":"pass","note":"fine"}`
	json := map[string]string{"Content-Type": "application/json"}
	if resp, body := do("POST", "/review/"+id+"/decision", reviewer, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, decision); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site decision: %d %s", resp.StatusCode, body)
	}
	if resp, body := do("POST", "/review/"+id+"/decision", reviewer, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "decision=pass&note=x"); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a form post: %d %s", resp.StatusCode, body)
	}
	if resp, body := do("POST", "/review/"+id+"/decision", basic("daimon-1", "agent-pw"), json, decision); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an agent's decision: %d %s", resp.StatusCode, body)
	}
	if resp, body := do("POST", "/review/"+id+"/decision", reviewer, json, decision); resp.StatusCode != http.StatusOK {
		t.Fatalf("decide: %d %s", resp.StatusCode, body)
	}
	if resp, body := do("POST", "/review/"+id+"/decision", reviewer, json, `{"decision":"fail","note":"no"}`); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already decided by reviewer at") {
		t.Errorf("a second decision: %d %s", resp.StatusCode, body)
	}
}
