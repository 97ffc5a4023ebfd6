package reviewui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t).Truncate(time.Second).String()
	},
	"when": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"conf": func(f float64) string { return fmt.Sprintf("%.2f", f) },
}

// queueView is what the queue templates render.
type queueView struct {
	Reviewer string
	Waiting  []review.Summary
	Decided  []review.Summary
	Ready    bool
}

func (s *Page) queueView(sess *session) queueView {
	v := queueView{Reviewer: sess.user}
	select {
	case <-sess.index.Ready():
		v.Ready = true
	default:
	}
	for _, r := range sess.index.List(false) {
		if r.Waiting() {
			v.Waiting = append(v.Waiting, r)
		} else {
			v.Decided = append(v.Decided, r)
		}
	}
	// The latest decisions first, and only the last 20.
	for i, j := 0, len(v.Decided)-1; i < j; i, j = i+1, j-1 {
		v.Decided[i], v.Decided[j] = v.Decided[j], v.Decided[i]
	}
	v.Decided = v.Decided[:min(len(v.Decided), 20)]
	return v
}

func (s *Page) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error().Err(err).Str("template", name).Msg("review page not rendered")
	}
}

func (s *Page) queuePage(w http.ResponseWriter, _ *http.Request, sess *session) {
	s.render(w, "queue.html", s.queueView(sess))
}

func (s *Page) queueFragment(w http.ResponseWriter, _ *http.Request, sess *session) {
	s.render(w, "queue-table", s.queueView(sess))
}

// events tells the page, as Server-Sent Events, each time the queue
// changes ("queue", with the number waiting), and sends a comment every
// 15 s so proxies keep the stream open.
func (s *Page) events(w http.ResponseWriter, r *http.Request, sess *session) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		changed := sess.index.Changed()
		n, _ := sess.index.Waiting()
		if _, err := fmt.Fprintf(w, "event: queue\ndata: {\"waiting\":%d}\n\n", n); err != nil {
			return
		}
		fl.Flush()
		for waiting := true; waiting; {
			select {
			case <-r.Context().Done():
				return
			case <-changed:
				waiting = false
			case <-tick.C:
				if _, err := io.WriteString(w, ": still here\n\n"); err != nil {
					return
				}
				fl.Flush()
			}
		}
	}
}

// reviewView is what the review page renders.
type reviewView struct {
	Reviewer    string
	Review      review.Review
	Verdict     pipeline.Verdict
	VerdictErr  string
	Thought     pipeline.Thought
	HasThought  bool
	ThoughtJSON string
	Decided     *review.Ruling
}

func (s *Page) reviewPage(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	rv, err := sess.desk.Review(r.Context(), id)
	if errors.Is(err, review.ErrNotFound) {
		http.Error(w, "no such review", http.StatusNotFound)
		return
	} else if err != nil {
		s.log.Warn().Err(err).Str("review", id).Msg("review not read")
		http.Error(w, "the review could not be read", http.StatusBadGateway)
		return
	}
	v := reviewView{Reviewer: sess.user, Review: rv}
	if v.Verdict, err = rv.ReadVerdict(); err != nil {
		v.VerdictErr = err.Error()
	}
	v.Thought, v.HasThought = rv.ReadThought()
	if len(rv.Thought) > 0 {
		var b bytes.Buffer
		if json.Indent(&b, rv.Thought, "", "  ") == nil {
			v.ThoughtJSON = b.String()
		}
	}
	if d, err := sess.desk.Decision(r.Context(), rv.AgentID, rv.ID); err == nil {
		v.Decided = &d
	}
	s.render(w, "review.html", v)
}

// decide stores the reviewer's decision: 200 with it, 409 with the one
// stored before, 400, 403, 404 or 507 (the stream is full).
func (s *Page) decide(w http.ResponseWriter, r *http.Request, sess *session) {
	if !sameOrigin(r) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-site request refused"})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "send JSON"})
		return
	}
	var in struct{ Decision, Note string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "not a decision: " + err.Error()})
		return
	}
	d, err := sess.desk.Decide(r.Context(), r.PathValue("id"), review.Choice{Decision: in.Decision, Note: in.Note, Reviewer: sess.user})
	var decided *review.DecidedError
	switch {
	case err == nil:
		s.log.Info().Str("review", d.ReviewID).Str("agent_id", d.AgentID).Str("decision", d.Decision).Str("reviewer", d.Reviewer).Msg("review decided")
		writeJSON(w, http.StatusOK, d)
	case errors.As(err, &decided):
		writeJSON(w, http.StatusConflict, map[string]any{"error": decided.Error(), "decided": decided.Decision})
	case errors.Is(err, review.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case errors.Is(err, review.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such review"})
	case errors.Is(err, review.ErrFull):
		writeJSON(w, http.StatusInsufficientStorage, map[string]string{"error": "the review stream is full; tell the operator"})
	default:
		s.log.Warn().Err(err).Msg("decision not stored")
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "the decision could not be stored; try again"})
	}
}

// sameOrigin refuses a request a browser says comes from another site:
// Origin, when sent, must name this host, and Sec-Fetch-Site, when sent,
// must be same-origin.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
		return false
	}
	if sf := r.Header.Get("Sec-Fetch-Site"); sf != "" && sf != "same-origin" {
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
