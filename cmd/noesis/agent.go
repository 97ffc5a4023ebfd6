package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/pipeline"
)

// The lines of nats-auth.conf between which `noesis agent add` and `remove`
// keep the agents' accounts; each agent's account sits between "# agent ID"
// and "# end agent ID".
const (
	agentsBegin = "# BEGIN AGENTS"
	agentsEnd   = "# END AGENTS"
)

// noesisAccount is the account that holds noesis's streams, buckets and
// internal subjects and exports each agent its own subjects.
const noesisAccount = "NOESIS"

// AgentInboxPrefix is the inbox prefix an agent may connect with. In its own
// account every inbox is its own; the prefix is kept so agents set up for the
// single-account model (where only _INBOX_<id> was theirs) go on working.
func AgentInboxPrefix(agentID string) string { return "_INBOX_" + agentID }

// What one agent's account may hold of the NATS server: connections, and
// subscriptions on each. Without them one agent could take every connection
// the server allows (max_connections, 64K by default), shutting out the
// other agents and the workers, and subscribe to its own outputs without
// end, so that the server copied each of them to every subscription. An
// agent needs a connection a process and a few subscriptions on each (its
// outputs, notices, review decisions and one inbox); edit an account's
// limits line for an agent that needs more.
const (
	agentMaxConnections   = 32
	agentMaxSubscriptions = 64
)

// agentAccount is the account block of agent id, whose one user logs in with
// login (an nkey or a user and password line): it imports its own thoughts'
// subject as a service and its own outputs as streams from the NOESIS
// account, and may publish and read only those and its inboxes, with at
// most agentMaxConnections connections of agentMaxSubscriptions
// subscriptions each.
func agentAccount(id, login string) string {
	return fmt.Sprintf(`# agent %[1]s
%[1]s {
  limits: { max_connections: %[5]d, max_subscriptions: %[6]d }
  users: [
    {
      %[2]s
      permissions: {
        publish: { allow: ["noesis.thoughts.%[1]s"] }
        subscribe: { allow: ["noesis.narratives.%[1]s", "noesis.verdicts.%[1]s", "noesis.analyses.%[1]s", "noesis.transcripts.%[1]s", "noesis.reviews.%[1]s", "noesis.deadletters.%[1]s", "_INBOX.>", "%[3]s.>"] }
      }
    }
  ]
  imports: [
    { service: { account: %[4]s, subject: "noesis.thoughts.%[1]s" } }
    { stream: { account: %[4]s, subject: "noesis.narratives.%[1]s" } }
    { stream: { account: %[4]s, subject: "noesis.verdicts.%[1]s" } }
    { stream: { account: %[4]s, subject: "noesis.analyses.%[1]s" } }
    { stream: { account: %[4]s, subject: "noesis.transcripts.%[1]s" } }
    { stream: { account: %[4]s, subject: "noesis.reviews.%[1]s" } }
    { stream: { account: %[4]s, subject: "noesis.deadletters.%[1]s" } }
  ]
}
# end agent %[1]s
`, id, login, AgentInboxPrefix(id), noesisAccount, agentMaxConnections, agentMaxSubscriptions)
}

// defaultSeedDir is where agent seeds go unless --dir says otherwise: the
// user's configuration directory (~/.config/noesis/agents on Linux), outside
// any repository, so a seed is never committed by accident.
func defaultSeedDir() string {
	if d := os.Getenv("NOESIS_AGENT_DIR"); d != "" {
		return d
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return filepath.Join(".noesis", "agents")
	}
	return filepath.Join(base, "noesis", "agents")
}

var pidFileLine = regexp.MustCompile(`(?m)^\s*pid_file\s*[:=]\s*"?([^"\n#]+?)"?\s*$`)

// reloadCommand is the command that makes the server started from conf read
// it again: by its pid file when conf names one (a bare --signal reload fails
// when more than one nats-server runs on the machine).
func reloadCommand(conf string) string {
	text, err := os.ReadFile(conf)
	if err == nil {
		if m := pidFileLine.FindSubmatch(text); m != nil {
			return "nats-server --signal reload=" + string(m[1]) + "   (the pid_file of " + conf + ", from the directory the server was started in)"
		}
	}
	return "nats-server --signal reload=<pid of the server started with " + conf + ">"
}

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Give agents their own NATS accounts and identities"}
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Create an agent's NKey and its own account in nats-auth.conf",
		Long: `Create an NKey for agent ID, write its seed to DIR/ID.nk (mode 0600; DIR is
$NOESIS_AGENT_DIR or ~/.config/noesis/agents by default, outside any repository),
and add an account named ID to the NATS config between the "# BEGIN AGENTS" and
"# END AGENTS" lines. The account imports from NOESIS only the agent's own
subjects: noesis.thoughts.ID to publish, and its own narratives, verdicts,
analyses, transcripts, review decisions and dead-letter notices to read. Reload the
server twice to let it in (the command is printed): nats-server lets the new
account log in at the first reload but routes its thoughts to the stream only
at the second (until then a publish gets "no response from stream"); or
restart it. The agent connects with the seed (nats CLI: --nkey DIR/ID.nk; noesis publish:
NATS_NKEY=DIR/ID.nk).`,
		Example: `  noesis agent add daimon-7 --conf /etc/nats/nats-auth.conf`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			conf, dir := agentFiles(cmd)
			seedPath, pub, err := addAgent(id, conf, dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s added to %s as account %s (public key %s)\nseed written to %s; keep it secret, give it to the agent only\n"+
				"reload the NATS server twice to let it in (the first reload lets it log in, the second routes its thoughts to the stream): %s\n"+
				"connect as it: NATS_NKEY=%s noesis publish --agent %s --text ...   or   nats --nkey %s ...\n",
				id, conf, id, pub, seedPath, reloadCommand(conf), seedPath, id, seedPath)
			return nil
		},
	}
	add.Flags().String("conf", "nats-auth.conf", "the NATS config to add the agent to")
	add.Flags().String("dir", "", "where to write the agent's seed (default $NOESIS_AGENT_DIR or ~/.config/noesis/agents)")

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Take an agent's account out of nats-auth.conf and delete its seed",
		Long: `Remove agent ID's account from the NATS config and delete DIR/ID.nk if it is
there. After the reload (the command is printed) the server closes the agent's
connections and refuses its seed. Its thoughts already stored are still
processed; its outputs are kept in NOESIS_OUTPUTS until they age out.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			conf, dir := agentFiles(cmd)
			seedRemoved, err := removeAgent(id, conf, dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s removed from %s\n", id, conf)
			if seedRemoved != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "seed %s deleted\n", seedRemoved)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reload the NATS server to shut it out: %s\n", reloadCommand(conf))
			return nil
		},
	}
	remove.Flags().String("conf", "nats-auth.conf", "the NATS config to remove the agent from")
	remove.Flags().String("dir", "", "where the agent's seed is (default $NOESIS_AGENT_DIR or ~/.config/noesis/agents)")
	cmd.AddCommand(add, remove)
	return cmd
}

// agentFiles reads an agent command's --conf and --dir, the seed directory
// defaulting to defaultSeedDir.
func agentFiles(cmd *cobra.Command) (conf, dir string) {
	conf, _ = cmd.Flags().GetString("conf")
	if dir, _ = cmd.Flags().GetString("dir"); dir == "" {
		dir = defaultSeedDir()
	}
	return conf, dir
}

// validAgentID says why id cannot name an agent's account, or nil.
func validAgentID(id string) error {
	if !pipeline.ValidToken(id) {
		return fmt.Errorf("agent id %q: want 1-128 letters, digits, '-' or '_' (it names a subject token and an account)", id)
	}
	switch strings.ToUpper(id) {
	case noesisAccount, "SYS", "$SYS", "$G", "GLOBAL":
		return fmt.Errorf("agent id %q names an account NATS or noesis keeps for itself", id)
	case "INCLUDE": // a directive, not a key, to the config's parser
		return fmt.Errorf("agent id %q is a word of the NATS config's own", id)
	}
	return nil
}

// agentsSection finds the agents' section of conf's text: the offsets of the
// begin marker and of the start of the line that holds the end marker.
func agentsSection(conf string, text []byte) (int, int, error) {
	begin, end := bytes.Index(text, []byte(agentsBegin)), bytes.Index(text, []byte(agentsEnd))
	if begin < 0 || end < begin {
		return 0, 0, fmt.Errorf("%s has no %q ... %q section of agents", conf, agentsBegin, agentsEnd)
	}
	return begin, bytes.LastIndexByte(text[:end], '\n') + 1, nil
}

// agentBlock finds agent id's block in the section text[begin:end]: from the
// start of its "# agent ID" line to the end of its "# end agent ID" line.
func agentBlock(text []byte, begin, end int, id string) (int, int, bool) {
	section := text[begin:end]
	open := regexp.MustCompile(`(?m)^[ \t]*# agent ` + regexp.QuoteMeta(id) + `[ \t]*\n`).FindIndex(section)
	close := regexp.MustCompile(`(?m)^[ \t]*# end agent ` + regexp.QuoteMeta(id) + `[ \t]*\n`).FindIndex(section)
	if open == nil || close == nil || close[0] < open[0] {
		return 0, 0, false
	}
	return begin + open[0], begin + close[1], true
}

// addAgent creates agent id's NKey, writes its seed under dir and adds the
// agent's account to conf. It returns the seed's path and the public key.
func addAgent(id, conf, dir string) (string, string, error) {
	if err := validAgentID(id); err != nil {
		return "", "", err
	}
	text, err := os.ReadFile(conf)
	if err != nil {
		return "", "", err
	}
	begin, end, err := agentsSection(conf, text)
	if err != nil {
		return "", "", err
	}
	_, _, ok := agentBlock(text, begin, end, id)
	if ok || regexp.MustCompile(`(?m)^[ \t]*"?`+regexp.QuoteMeta(id)+`"?[ \t]*\{`).Match(text[begin:end]) {
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	seedPath := filepath.Join(dir, id+".nk")
	f, err := os.OpenFile(seedPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", "", fmt.Errorf("%s exists: remove the agent first (noesis agent remove %s)", seedPath, id)
	}
	if err != nil {
		return "", "", err
	}
	if _, err := f.Write(append(seed, '\n')); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	// Insert before the line that holds the end marker, indented like it.
	indent := string(text[end : end+bytes.IndexByte(text[end:], '#')])
	block := indentLines(agentAccount(id, "nkey: "+pub), indent)
	out := append(append(append([]byte{}, text[:end]...), block...), text[end:]...)
	if err := writeConf(conf, out); err != nil {
		os.Remove(seedPath)
		return "", "", err
	}
	return seedPath, pub, nil
}

// removeAgent takes agent id's account out of conf and deletes its seed in
// dir when there is one; it returns the deleted seed's path, or "".
func removeAgent(id, conf, dir string) (string, error) {
	if err := validAgentID(id); err != nil {
		return "", err
	}
	text, err := os.ReadFile(conf)
	if err != nil {
		return "", err
	}
	begin, end, err := agentsSection(conf, text)
	if err != nil {
		return "", err
	}
	from, to, ok := agentBlock(text, begin, end, id)
	if !ok {
		return "", fmt.Errorf("agent %s is not in %s", id, conf)
	}
	out := append(append([]byte{}, text[:from]...), text[to:]...)
	if err := writeConf(conf, out); err != nil {
		return "", err
	}
	seedPath := filepath.Join(dir, id+".nk")
	if err := os.Remove(seedPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	return seedPath, nil
}

func indentLines(block, indent string) string {
	lines := strings.SplitAfter(block, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(indent + l)
		}
	}
	return b.String()
}

// writeConf replaces conf by text through a temporary file beside it, so a
// server reloading meanwhile reads the old file or the new one, never half of
// it. A symbolic link is followed (the file it points to is replaced, the
// link kept), and the file keeps its mode and, where this process may set
// it, its owner and group.
func writeConf(conf string, text []byte) error {
	target, err := filepath.EvalSymlinks(conf)
	if err != nil {
		return err
	}
	info, err := os.Stat(target)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".noesis-conf-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		_ = tmp.Chown(int(st.Uid), int(st.Gid)) // not ours to change when we may not
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), target)
}
