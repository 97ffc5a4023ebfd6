package setup_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/setup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.LeakOptions()...) }

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("create: %w", nats.ErrNoResponders), true},
		{jetstream.ErrJetStreamNotEnabled, true},
		{&jetstream.APIError{Code: 503, Description: "JetStream system temporarily unavailable"}, true},
		{&jetstream.APIError{Code: 500, Description: "insufficient resources"}, true},
		{&jetstream.APIError{Code: 400, Description: "subjects overlap with an existing stream"}, false},
		{errors.New("permissions violation"), false},
	} {
		if got := setup.Unavailable(tc.err); got != tc.want {
			t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Do stops at once on a failure that is not JetStream being away, naming
// what it set up.
func TestDoGivesUpOnAPermanentFailure(t *testing.T) {
	tries := 0
	err := setup.Do(context.Background(), "stream X", func(context.Context) error {
		tries++
		return errors.New("permissions violation")
	})
	if tries != 1 || err == nil || err.Error() != "stream X: permissions violation" {
		t.Fatalf("Do = %v after %d tries; want the failure, named, after 1", err, tries)
	}
}

// Stream and Bucket are idempotent: a second set-up of the same
// configuration changes nothing and fails nothing.
func TestStreamAndBucketTwice(t *testing.T) {
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}
	kc := jetstream.KeyValueConfig{Bucket: "b", History: 1}
	for i := range 2 {
		if err := setup.Stream(ctx, js, sc); err != nil {
			t.Fatalf("Stream, time %d: %v", i+1, err)
		}
		if _, err := setup.Bucket(ctx, js, kc); err != nil {
			t.Fatalf("Bucket, time %d: %v", i+1, err)
		}
	}
	sc.MaxMsgs = 10 // a change is an update
	if err := setup.Stream(ctx, js, sc); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.Config.MaxMsgs != 10 {
		t.Fatalf("after the update: %v, %v; want MaxMsgs 10", info, err)
	}
}
