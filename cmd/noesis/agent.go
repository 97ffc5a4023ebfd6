package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/pipeline"
)

// The lines of nats-auth.conf between which `noesis agent add` keeps the agents.
const (
	agentsBegin = "# BEGIN AGENTS"
	agentsEnd   = "# END AGENTS"
)

// AgentInboxPrefix is the inbox prefix an agent connects with: its replies
// (JetStream's publish acknowledgements) come on subjects only it may read.
func AgentInboxPrefix(agentID string) string { return "_INBOX_" + agentID }

// agentPermissions is the permissions block of an agent: publish its own
// thoughts, read its own outputs and its own inbox, nothing else.
func agentPermissions(id string) string {
	return fmt.Sprintf(`permissions: {
          publish: { allow: ["noesis.thoughts.%[1]s"] }
          subscribe: { allow: ["noesis.narratives.%[1]s", "noesis.verdicts.%[1]s", "noesis.analyses.%[1]s", "%[2]s.>"] }
        }`, id, AgentInboxPrefix(id))
}

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Give agents their own NATS identities"}
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Create an agent's NKey and allow it its own subjects in nats-auth.conf",
		Long: `Create an NKey for agent ID, write its seed to DIR/ID.nk (mode 0600), and add
the agent to the NATS config between the "# BEGIN AGENTS" and "# END AGENTS" lines:
it may publish only noesis.thoughts.ID and read only its own narratives, verdicts,
analyses and its inbox, _INBOX_ID.>. Reload the server to let it in
(nats-server --signal reload, or restart). The agent connects with the seed and
the inbox prefix _INBOX_ID (nats CLI: --nkey ID.nk --inbox-prefix _INBOX_ID;
noesis publish: NATS_NKEY=ID.nk).`,
		Example: `  noesis agent add daimon-7 --conf nats-auth.conf --dir secrets/`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			conf, _ := cmd.Flags().GetString("conf")
			dir, _ := cmd.Flags().GetString("dir")
			seedPath, pub, err := addAgent(id, conf, dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s added to %s (public key %s)\nseed written to %s; keep it secret, give it to the agent only\n"+
				"reload the NATS server to let it in: nats-server --signal reload\n"+
				"connect as it: NATS_NKEY=%s noesis publish --agent %s --text ...   or   nats --nkey %s --inbox-prefix %s ...\n",
				id, conf, pub, seedPath, seedPath, id, seedPath, AgentInboxPrefix(id))
			return nil
		},
	}
	add.Flags().String("conf", "nats-auth.conf", "the NATS config to add the agent to")
	add.Flags().String("dir", ".", "where to write the agent's seed")
	cmd.AddCommand(add)
	return cmd
}

// addAgent creates agent id's NKey, writes its seed under dir and adds the
// agent to conf. It returns the seed's path and the public key.
func addAgent(id, conf, dir string) (string, string, error) {
	if !pipeline.ValidToken(id) {
		return "", "", fmt.Errorf("agent id %q: want 1-128 letters, digits, '-' or '_' (it names a subject token)", id)
	}
	text, err := os.ReadFile(conf)
	if err != nil {
		return "", "", err
	}
	begin, end := bytes.Index(text, []byte(agentsBegin)), bytes.Index(text, []byte(agentsEnd))
	if begin < 0 || end < begin {
		return "", "", fmt.Errorf("%s has no %q ... %q section to add agents to", conf, agentsBegin, agentsEnd)
	}
	if bytes.Contains(text[begin:end], []byte(fmt.Sprintf("# agent %s\n", id))) {
		return "", "", fmt.Errorf("agent %s is already in %s", id, conf)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", "", err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", "", err
	}
	seedPath := filepath.Join(dir, id+".nk")
	if err := os.WriteFile(seedPath, append(seed, '\n'), 0o600); err != nil {
		return "", "", err
	}
	// Insert before the line that holds the end marker, indented like it.
	lineStart := bytes.LastIndexByte(text[:end], '\n') + 1
	indent := string(text[lineStart:end])
	block := fmt.Sprintf("%s# agent %s\n%s{\n%s  nkey: %s\n%s  %s\n%s}\n", indent, id, indent, indent, pub, indent,
		strings.ReplaceAll(agentPermissions(id), "\n", "\n"+indent), indent)
	out := append(append(append([]byte{}, text[:lineStart]...), block...), text[lineStart:]...)
	if err := os.WriteFile(conf, out, 0o644); err != nil {
		return "", "", err
	}
	return seedPath, pub, nil
}
