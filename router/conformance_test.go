package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// conformanceKey is the key every conformance backend presents; the
// simulator's 401 quotes a wrong key back, as some providers do.
const conformanceKey = "sk-conformance-0123456789abcdef"

// newBackendFunc builds the Backend under test, talking to the simulator at
// baseURL with key (and modal's key and secret, for providers that send them).
type newBackendFunc func(t *testing.T, baseURL, key string) Backend

// TestBackendConformance runs the suite any Backend must pass over every
// provider kind noesis ships: OpenAI-compatible over HTTP/1.1 (Nebius,
// OpenAI), Modal's proxy headers, and the simulator's h2c.
func TestBackendConformance(t *testing.T) {
	for _, kind := range []string{KindOpenAI, KindNebius, KindModal, KindSim} {
		t.Run(kind, func(t *testing.T) {
			base := sim.Config{APIKey: conformanceKey, RetryAfter: 2 * time.Second}
			if kind == KindModal {
				base.ModalKey, base.ModalSecret = "mk-conformance-key", "ms-conformance-secret"
			}
			testBackendConformance(t, base, func(t *testing.T, baseURL, key string) Backend {
				return chainBackend(t, kind, baseURL, key)
			})
		})
	}
}

// chainBackend is the backend New builds for one target of a provider of kind.
func chainBackend(t *testing.T, kind, baseURL, key string) Backend {
	t.Helper()
	p := Provider{Name: "p", Kind: kind, BaseURL: baseURL, APIKey: key}
	if kind == KindModal {
		p.Headers = map[string]string{"Modal-Key": "mk-conformance-key", "Modal-Secret": "ms-conformance-secret"}
	}
	c, err := New(Config{Providers: []Provider{p}, Targets: []Target{{Name: "t", Provider: "p", Model: "meta-llama/Llama-3.3-70B-Instruct-fast"}},
		Tiers: map[pipeline.Tier][]string{pipeline.TierFast: {"t"}}}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.targets["t"].backend
}

// testBackendConformance is the suite: answers read, the caller's context
// honoured, every failure a classified *CallError, no key ever printed.
// base configures the simulator the backend must talk to (its key, its proxy
// auth, the Retry-After of its 429s: 2 s).
func testBackendConformance(t *testing.T, base sim.Config, newBackend newBackendFunc) {
	ask := pipeline.Request{Tier: pipeline.TierFast, MaxTokens: 64, Purpose: "narrative",
		Messages: []pipeline.Message{{Role: pipeline.RoleUser, Content: "Narrate: the agent archived last week's logs."}}}
	simWith := func(t *testing.T, f sim.Faults) (*sim.Server, string) {
		s, url := simtest.Start(t, base)
		if err := s.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		return s, url
	}

	t.Run("answers", func(t *testing.T) {
		_, url := simWith(t, sim.Faults{})
		r, err := newBackend(t, url, conformanceKey).Chat(context.Background(), &ask)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(r.Content) == "" || r.Usage.TotalTokens <= 0 || strings.Contains(r.Content, "</think>") {
			t.Errorf("reply %+v: want content without thinking, and usage", r)
		}
	})
	t.Run("a cancelled call returns at once", func(t *testing.T) {
		_, url := simWith(t, sim.Faults{HangRate: 1})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		err := callWithin(t, 5*time.Second, func() error { _, err := newBackend(t, url, conformanceKey).Chat(ctx, &ask); return err })
		wantClass(t, err, ClassCanceled, nil)
	})
	t.Run("a deadline is a timeout, transient", func(t *testing.T) {
		_, url := simWith(t, sim.Faults{HangRate: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := callWithin(t, 5*time.Second, func() error { _, err := newBackend(t, url, conformanceKey).Chat(ctx, &ask); return err })
		wantClass(t, err, ClassTimeout, pipeline.ErrTransient)
	})
	t.Run("429 is rate limited, with its Retry-After", func(t *testing.T) {
		_, url := simWith(t, sim.Faults{RateLimitRate: 1})
		_, err := newBackend(t, url, conformanceKey).Chat(context.Background(), &ask)
		ce := wantClass(t, err, ClassRateLimited, pipeline.ErrRateLimited)
		if ce != nil && (ce.Status != 429 || ce.RetryAfter != 2*time.Second) {
			t.Errorf("status %d, Retry-After %s; want 429 and the provider's 2s", ce.Status, ce.RetryAfter)
		}
	})
	t.Run("500 is a server error, transient", func(t *testing.T) {
		_, url := simWith(t, sim.Faults{ErrorRate: 1})
		_, err := newBackend(t, url, conformanceKey).Chat(context.Background(), &ask)
		wantClass(t, err, ClassServer, pipeline.ErrTransient)
	})
	t.Run("a wrong key is permanent and never printed", func(t *testing.T) {
		_, url := simWith(t, sim.Faults{})
		wrong := "sk-wrong-key-that-must-never-print-42"
		_, err := newBackend(t, url, wrong).Chat(context.Background(), &ask)
		ce := wantClass(t, err, ClassClient, pipeline.ErrPermanent)
		if err == nil {
			return
		}
		printed := fmt.Sprintf("%v %+v %#v", err, err, ce)
		for _, secret := range []string{wrong, conformanceKey, "mk-conformance-key", "ms-conformance-secret"} {
			if strings.Contains(printed, secret) {
				t.Errorf("the error prints a secret: %s", printed)
			}
		}
	})
	t.Run("nothing listening is a network error, transient", func(t *testing.T) {
		_, err := newBackend(t, "http://127.0.0.1:1/v1", conformanceKey).Chat(context.Background(), &ask)
		wantClass(t, err, ClassNetwork, pipeline.ErrTransient)
	})
}

// callWithin runs call and fails the test if it takes longer than limit.
func callWithin(t *testing.T, limit time.Duration, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("the call did not return within %s of its context's end", limit)
		return nil
	}
}

// wantClass checks that err is a *CallError of class (for cancelled calls and
// timeouts, ErrorClass's word for it) wrapping kind, and returns it.
func wantClass(t *testing.T, err error, class string, kind error) *CallError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want a %s error", class)
	}
	if got := ErrorClass(err); got != class {
		t.Errorf("class %q, want %q: %v", got, class, err)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("%v: want it to wrap %v", err, kind)
	}
	var ce *CallError
	if !errors.As(err, &ce) {
		if class != ClassCanceled && class != ClassTimeout {
			t.Errorf("%T %v: want a *CallError", err, err)
		}
		return nil
	}
	return ce
}
