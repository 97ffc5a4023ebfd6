package consumers

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers/shared"
)

// ThoughtsHeld reads how many thoughts each agent holds in NOESIS_THOUGHTS
// (acknowledged ones the Compactor has not removed included); none when the
// stream is missing.
func ThoughtsHeld(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	st, err := js.Stream(ctx, StreamThoughts)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(ThoughtsPrefix+"*"))
	if err != nil {
		return nil, err
	}
	held := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		held[strings.TrimPrefix(subj, ThoughtsPrefix)] = n
	}
	return held, nil
}

// ReadAgentUse reads every agent's thoughts held (ThoughtsHeld) and its use
// of the shared limits (shared.ReadAgentUse), most thoughts held first. An
// unreadable counter is left out and returned among the errors.
func ReadAgentUse(ctx context.Context, js jetstream.JetStream, window time.Duration) ([]shared.AgentUse, []error, error) {
	held, err := ThoughtsHeld(ctx, js)
	if err != nil {
		return nil, nil, err
	}
	return shared.ReadAgentUse(ctx, js, window, held)
}
