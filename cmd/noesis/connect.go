package main

import (
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
