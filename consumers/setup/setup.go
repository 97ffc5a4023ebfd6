package setup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline/retry"
)

// Policy is how setting up is tried again: from 50 ms, doubling to a
// second, ±20 %, until ctx ends.
var Policy = retry.Exponential(50*time.Millisecond, time.Second)

// opTimeout bounds each try.
const opTimeout = 5 * time.Second

// Do runs op until it succeeds, fails for good, or ctx ends, each try
// within 5 s. It tries again while JetStream is unavailable (see
// Unavailable). Its error names what was being set up. Safe for concurrent
// use.
func Do(ctx context.Context, what string, op func(context.Context) error) error {
	_, err := retry.Do(ctx, Policy, func() (struct{}, error) {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		err := op(octx)
		if err != nil && !Unavailable(err) {
			return struct{}{}, retry.Permanent(err)
		}
		return struct{}{}, err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Unavailable reports whether err says JetStream is not there yet (a timeout,
// no responders, a server error, no peers or resources yet) or that another
// process is creating the same stream: worth another try.
func Unavailable(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code >= 500 || apiErr.ErrorCode == jetstream.JSErrCodeStreamNameInUse ||
			strings.Contains(apiErr.Description, "already in use") || strings.Contains(apiErr.Description, "insufficient resources") ||
			strings.Contains(apiErr.Description, "no suitable peers") || strings.Contains(apiErr.Description, "not available")
	}
	return false
}

// Stream creates sc's stream, or updates it when its configuration differs,
// trying again as Do does. It asks for a create first: JetStream answers a
// create whose configuration matches the stream's with the stream and
// changes nothing, so a worker starting against streams already set up
// (every start but the first) updates none, where an update always rewrites
// the stream's configuration and announces it.
func Stream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	return Do(ctx, "stream "+sc.Name, func(ctx context.Context) error {
		_, err := js.CreateStream(ctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			_, err = js.UpdateStream(ctx, sc)
		}
		return err
	})
}

// Bucket creates a key-value bucket, or updates it when its configuration
// differs, asking for a create first as Stream does. It tries once: run it
// inside Do.
func Bucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.UpdateKeyValue(ctx, cfg)
	}
	return kv, err
}
