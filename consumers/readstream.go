package consumers

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadStream calls fn with every message of a stream (matching filter, if
// any) stored when it starts, oldest first, through an ephemeral consumer
// that acknowledges nothing. Unlike an ordered consumer it gives up with an
// error when ctx ends, even while the stream's cluster is changing leaders.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream, filter string, fn func(jetstream.Msg)) error {
	return ReadStreamFrom(ctx, js, stream, filter, 0, fn)
}

// ReadStreamFrom is ReadStream starting at stream sequence from (0: the first).
func ReadStreamFrom(ctx context.Context, js jetstream.JetStream, stream, filter string, from uint64, fn func(jetstream.Msg)) error {
	var filters []string
	if filter != "" {
		filters = []string{filter}
	}
	return readStream(ctx, js, stream, filters, from, fn)
}

// readStream is ReadStreamFrom with any number of filters (none: every message).
func readStream(ctx context.Context, js jetstream.JetStream, stream string, filters []string, from uint64, fn func(jetstream.Msg)) error {
	s, info, err := streamInfo(ctx, js, stream)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	if from > last {
		return nil
	}
	cc := jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 30 * time.Second, MemoryStorage: true}
	if from > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	switch len(filters) {
	case 0:
	case 1:
		cc.FilterSubject = filters[0]
	default:
		cc.FilterSubjects = filters
	}
	c, err := s.CreateConsumer(ctx, cc)
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, c.CachedInfo().Name)
	}()
	for ctx.Err() == nil {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return err
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err == nil && md.Sequence.Stream > last {
				done = true // stored after we started
				continue
			}
			fn(m)
			if err == nil && (md.Sequence.Stream >= last || md.NumPending == 0) {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if done || n == 0 {
			return nil
		}
	}
	return ctx.Err()
}

// streamInfo looks a stream up and reads its info.
func streamInfo(ctx context.Context, js jetstream.JetStream, stream string) (jetstream.Stream, *jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, nil, err
	}
	info, err := s.Info(ctx)
	return s, info, err
}
