package main

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
)

// Under the shipped nats-auth.conf, a command run with a login that may not
// do what it asks ends, within its timeout, with an error that says the
// server refused the login and who may ask: not a bare "context deadline
// exceeded" (the server answers a refused request with nothing), and, for
// review list, not a wait for ever while it tried again every second.
func TestRefusedCommandsSayWhoMay(t *testing.T) {
	ns, seeds, _ := authServer(t)
	t.Setenv("NATS_URL", ns.ClientURL())
	t.Setenv("NATS_NKEY", filepath.Join(seeds, "alice.nk")) // alice, an agent
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"review", "list"}, reviewerHint},
		{[]string{"review", "show", "0123456789abcdef"}, reviewerHint},
		{[]string{"review", "decide", "0123456789abcdef", "pass", "--note", "mine"}, reviewerHint},
		{[]string{"dlq", "list"}, operatorHint},
		{[]string{"status"}, operatorHint},
		{[]string{"publish", "--agent", "bob", "--text", "I am bob"}, agentHint},
	}
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() { _, errs[i] = runCLI(t, "", c.args...) })
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(45 * time.Second):
		t.Fatal("a command refused by the server is still waiting after 45 s")
	}
	for i, c := range cases {
		err := errs[i]
		if err == nil || !strings.Contains(err.Error(), "the server refused this NATS login: nats: permissions violation") || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%v as agent alice: err = %v; want the refusal and %q", c.args, err, c.says)
		}
	}
}

// A thought built from flags that lacks what a worker requires is refused
// before anything is sent, in the command line's words: which flag to give,
// and the setting that bounds its size.
func TestThoughtFlagsSayWhatToGive(t *testing.T) {
	t.Setenv("NOESIS_AGENT", "")
	t.Setenv("NOESIS_MAX_THOUGHT_BYTES", "")
	t.Setenv("NATS_URL", "nats://127.0.0.1:1") // nothing listens: none of these may connect
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"publish", "--text", "no agent"}, "bad input: no agent: give --agent <agent_id>, or set NOESIS_AGENT"},
		{[]string{"judge", "--text", "no agent"}, "bad input: no agent: give --agent <agent_id>, or set NOESIS_AGENT"},
		{[]string{"publish", "--agent", "daimon-1"}, `bad input: nothing to say: give --text "..."`},
		{[]string{"judge", "--agent", "daimon-1"}, `bad input: nothing to say: give --action "..." or --text "..."`},
		{[]string{"publish", "--agent", "daimon-1", "--text", strings.Repeat("y", 70000)}, "over the 65536-byte limit (NOESIS_MAX_THOUGHT_BYTES): shorten it"},
		{[]string{"review", "decide", "0123456789abcdef", "pass"}, `give --note "..."`},
	} {
		if _, err := runCLI(t, "", c.args...); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%.60q: err = %v; want it to say %q", c.args, err, c.says)
		}
	}
}

// A thought published where noesis has never run (no stream takes it) says
// to start noesis serve there, not only "no response from stream".
func TestPublishWhereNoesisNeverRanSaysToStartIt(t *testing.T) {
	t.Setenv("NATS_URL", natstest.RunServer(t).ClientURL())
	_, err := runCLI(t, "", "publish", "--agent", "daimon-1", "--text", "is anyone there")
	if err == nil || !strings.Contains(err.Error(), "no stream takes noesis.thoughts.daimon-1 on this NATS server: start noesis serve against it first") {
		t.Fatalf("err = %v; want it to say to start noesis serve", err)
	}
}

// A bad flag or argument says where the usage is, and exits 1.
func TestBadFlagsSayWhereTheUsageIs(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"publish", "--agnet", "daimon-1"}, "unknown flag: --agnet (noesis publish --help lists the flags)"},
		{[]string{"judge", "--timeout", "5"}, `missing unit in duration "5" (noesis judge --help lists the flags)`},
		{[]string{"review", "decide", "0123456789abcdef"}, `accepts 2 arg(s), received 1; usage: noesis review decide ID pass|fail --note "why"`},
	} {
		_, err := runCLI(t, "", c.args...)
		if err == nil || !strings.Contains(err.Error(), c.says) || exitCode(err) != exitError {
			t.Errorf("%q: err = %v (exit %d); want it to say %q, exit 1", c.args, err, exitCode(err), c.says)
		}
	}
}

// A replay that matches no letter says where the letters are listed.
func TestReplayOfNoLetterSaysWhereTheyAre(t *testing.T) {
	ns, _, _ := streamsOnly(t, consumers.StreamsConfig{})
	t.Setenv("NATS_URL", ns.ClientURL())
	if _, err := runCLI(t, "", "dlq", "replay", "--id", "999"); err == nil || !strings.Contains(err.Error(), "no dead letter matches --id 999 (noesis dlq list shows their sequences and event ids)") {
		t.Errorf("--id 999: err = %v", err)
	}
	if _, err := runCLI(t, "", "dlq", "replay", "--all", "--stage", "tribunal"); err == nil || !strings.Contains(err.Error(), "no dead letter to replay of stage tribunal (noesis dlq list shows them)") {
		t.Errorf("--all: err = %v", err)
	}
}
