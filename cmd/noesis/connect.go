package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/config"
)

// connect loads cmd's configuration (--env-file, then the environment) and
// connects to NATS as client name, for a command that reads or writes the
// streams as an operator or reviewer. The caller closes the connection.
func connect(cmd *cobra.Command, name string) (config.Config, *nats.Conn, jetstream.JetStream, error) {
	cfg, err := cli.LoadConfig(cmd)
	if err != nil {
		return cfg, nil, nil, err
	}
	nc, js, err := service.Connect(cfg, name)
	return cfg, nc, js, err
}

// connectAs connects a command that acts as agent agentID. Its inbox prefix
// is the agent's own: under per-agent permissions it may read only
// _INBOX_<agent_id>.>, where its acknowledgements come.
func connectAs(cfg config.Config, name, agentID string, extra ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	return service.Connect(cfg, name, append([]nats.Option{nats.CustomInboxPrefix(AgentInboxPrefix(agentID))}, extra...)...)
}

// Who may do what under nats-auth.conf, for explainRefusal.
const (
	agentHint    = "under nats-auth.conf an agent's login publishes only its own thoughts: is --agent (or NOESIS_AGENT) the id of the agent whose key or user this is?"
	operatorHint = "this command reads noesis's streams: log in as the operator (NATS_USER=admin NATS_PASSWORD=...; docs/security.md)"
	reviewerHint = "the review queue is a reviewer's: log in as one (NATS_USER=reviewer NATS_PASSWORD=...; docs/security.md)"
)

// explainRefusal explains err, a request of nc's that went unanswered, when
// the server refused it for the login's permissions: the server sends the
// client an asynchronous permissions violation and no answer, so the
// request ends in its timeout ("context deadline exceeded") and says
// nothing of why. hint says which login may ask. Any other error is
// returned as it is.
func explainRefusal(nc *nats.Conn, err error, hint string) error {
	if err == nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
		return err
	}
	last := nc.LastError()
	if !errors.Is(last, nats.ErrPermissionViolation) {
		return err
	}
	return fmt.Errorf("the server refused this NATS login: %v; %s (%w)", last, hint, err)
}

// readable returns nil when this login may read stream, or the refusal
// explained: a command that follows a stream (the review index tries again
// while the stream is not there) would otherwise wait for ever for answers
// the server never sends. A stream not set up yet is readable.
func readable(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, stream, hint string) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	_, err := js.Stream(ctx, stream)
	if err == nil || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	return explainRefusal(nc, fmt.Errorf("read %s: %w", stream, err), hint)
}
