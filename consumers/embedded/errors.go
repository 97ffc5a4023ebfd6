package embedded

import "errors"

// ErrNotBuiltIn is Start's error in a binary built without the embedded
// server (the noembed build tag, as the container image is).
var ErrNotBuiltIn = errors.New("this binary has no embedded NATS server (built with -tags noembed, as the container image is): set NATS_URL to a NATS server with JetStream")
