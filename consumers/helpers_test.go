package consumers_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// withStreams starts a NATS server with noesis's streams and returns a
// JetStream client and a context cancelled when the test ends.
func withStreams(t *testing.T) (context.Context, jetstream.JetStream) {
	t.Helper()
	return withStreamsConfig(t, consumers.StreamsConfig{})
}

// withStreamsConfig is withStreams with the streams shaped by cfg.
func withStreamsConfig(t *testing.T, cfg consumers.StreamsConfig) (context.Context, jetstream.JetStream) {
	t.Helper()
	js := natstest.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := consumers.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	return ctx, js
}

// streamInfo reads the stream name's configuration and state.
func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// echo is a stage handler that answers every thought at once with an output
// naming it.
func echo(stage pipeline.Stage) pipeline.Handler {
	return func(_ context.Context, th pipeline.Thought) (pipeline.Output, error) {
		return &pipeline.Narrative{Meta: pipeline.Meta{EventID: th.EventID, AgentID: th.AgentID, Stage: stage}, Narrative: th.Content.UserInput}, nil
	}
}

// runPool runs a pool of cfg.Stage with h until the test ends, and waits for
// it to stop then.
func runPool(t *testing.T, js jetstream.JetStream, cfg consumers.PoolConfig, h pipeline.Handler) *consumers.Pool {
	t.Helper()
	pool, err := consumers.NewPool(js, cfg, h, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.EnsureConsumer(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pool.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	return pool
}

// thoughtJSON encodes a thought of agent for the given stages.
func thoughtJSON(t testing.TB, eventID, agent, text string, stages ...pipeline.Stage) []byte {
	t.Helper()
	data, err := json.Marshal(pipeline.Thought{EventID: eventID, AgentID: agent, Content: pipeline.Content{UserInput: text}, Stages: stages})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// createUnbounded creates the stream name as noesis sets it up, but with no
// bound per subject: a deployment's stream made by a release before that
// bound.
func createUnbounded(ctx context.Context, t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	for _, sc := range consumers.StreamConfigs(consumers.StreamsConfig{}) {
		if sc.Name == name {
			sc.MaxMsgsPerSubject = 0
			if _, err := js.CreateStream(ctx, sc); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("noesis sets up no stream %s", name)
}
