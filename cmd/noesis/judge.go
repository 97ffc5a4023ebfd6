package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
)

const judgeLong = `Publish a thought, wait for its verdict and exit with the tribunal's decision,
so a shell can gate an action on it:

  noesis judge --action "rm -rf /backups/2025-*" && rm -rf /backups/2025-*

judge subscribes to the agent's verdicts (and narratives with --narrative,
reviews with --wait-review, and the notices of its dead letters on
noesis.deadletters.<agent_id>) before it publishes, so no answer is missed
however fast it comes, and takes the one that names this very thought (its
event_id and the digest of its bytes, docs/contract.md). It prints
the decision, the consensus and each judge's vote, confidence and reasoning,
each on its own line, or with --json the verdict's JSON as it came, one line
(then the narrative's and the review's, each on a line of its own).

The thought asks for the tribunal only (and the narrative with --narrative)
unless --stages or the --file says otherwise, and is published with priority
critical: the band a worker serves first, for an action about to run
(docs/security.md, "Fair share between agents"). Without --text its
content.user_input is "I am about to run: <action>".

Exit status:
  0    pass (with --wait-review, also: the person reviewing passed it)
  1    error: a bad flag or thought, no connection, a subscription the server
       refused, the thought refused at publish (noesis is full, a quota)
  2    fail (with --wait-review, also: the person reviewing failed it)
  3    review: the tribunal asks a person to look (without --wait-review)
  4    capital: a judge found a capital offense, the veto (without --wait-review)
  5    unavailable: the deliberation missed its deadline (without --wait-review)
  6    timeout: no verdict within --timeout (or no review within --review-timeout)
  7    dead-lettered: noesis could not judge the thought (the stage and the
       reason on stderr), heard on noesis.deadletters.<agent_id>
  130  interrupted (SIGINT or SIGTERM) while waiting
Only 0 means go ahead; a script must treat every other status as "do not".

With --wait-review a verdict that requires a person (review, capital,
unavailable) is followed by the wait for that person's decision on
noesis.reviews.<agent_id>, and the status is theirs: 0 or 2.

Under nats-auth.conf an agent reads only its own subjects: not the dead
letters, but the notice of each of its own (over a quota, too long for the
model, invalid), which is enough for status 7. An agent's account set up
before the notices has no import of them: judge says so and a dead-lettered
thought ends in the timeout. --dlq also watches the dead letters themselves;
it is on by default only when judge connects without NATS credentials (a
server without access control); an operator's login may ask for it.`

func newJudgeCmd() *cobra.Command {
	var wait judgeRequest // what the flags say of the wait; judgeRequestFromFlags adds the thought
	cmd := &cobra.Command{
		Use:   "judge",
		Short: "Publish a thought, wait for its verdict and exit with the decision (0 only for pass)",
		Long:  judgeLong,
		Example: `  noesis judge --agent daimon-1 --action "rm -rf /backups/2025-*" && rm -rf /backups/2025-*
  noesis judge --agent daimon-1 --text "I will email the customer list" --narrative
  noesis judge --agent daimon-1 --action "drop the staging database" --wait-review --review-timeout 4h
  noesis judge --agent daimon-1 --action "rotate the keys" --json | jq -r .decision`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runJudge(cmd, wait) },
	}
	addThoughtFlags(cmd, "the band a worker serves it in: critical, normal or batch (default critical: an agent waits on it)")
	f := cmd.Flags()
	f.Lookup("stages").Usage = "stages to run, the tribunal among them (default tribunal, plus narrative with --narrative)"
	f.DurationVar(&wait.timeout, "timeout", 0, "how long to wait for the verdict once the thought is stored (default NOESIS_TRIBUNAL_DEADLINE + 30s: 3m0s)")
	f.BoolVar(&wait.narrative, "narrative", false, "ask for the narrative too, wait for it and print it")
	f.BoolVar(&wait.json, "json", false, "print the verdict's JSON as it came, on one line (then the narrative's, the review's)")
	f.BoolVar(&wait.waitReview, "wait-review", false, "when the verdict requires a person, wait for their decision on noesis.reviews.<agent_id> and exit with it")
	f.DurationVar(&wait.reviewTimeout, "review-timeout", time.Hour, "with --wait-review: how long to wait for the person's decision")
	f.BoolVar(&wait.dlq, "dlq", false, "watch the dead letters too (an operator's login), not only the agent's notices of them (default: on without NATS credentials)")
	return cmd
}

// judgeRequest is what one run of judge publishes and waits for.
type judgeRequest struct {
	thought       pipeline.Thought // as a worker reads it
	data          []byte           // as published
	subject       string
	narrative     bool // ask for, wait for and print the narrative
	waitReview    bool
	dlq           bool // watch noesis.dlq.<stage>
	json          bool
	timeout       time.Duration
	reviewTimeout time.Duration
}

// outputID is the Nats-Msg-Id of the thought's output of stage s.
func (r judgeRequest) outputID(s pipeline.Stage) string {
	return consumers.OutputMsgID(r.thought.EventID, s, consumers.ThoughtDigest(r.subject, r.data))
}

// testHookJudgeStored, when set, runs once the thought is stored and before
// judge waits: a test publishes a verdict there, faster than any worker.
var testHookJudgeStored func(r judgeRequest)

func runJudge(cmd *cobra.Command, wait judgeRequest) error {
	cfg, err := cli.LoadConfig(cmd)
	if err != nil {
		return err
	}
	req, err := judgeRequestFromFlags(cmd, cfg, wait)
	if err != nil {
		return err
	}
	nc, js, err := connectAs(cfg, "noesis-judge", req.thought.AgentID,
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // refused subscriptions: subscribeAnswers reports them
	if err != nil {
		return err
	}
	defer nc.Close()
	// Subscribe, and have the server confirm it, before publishing.
	ans, err := subscribeAnswers(nc, req)
	if err != nil {
		return err
	}
	defer ans.close()
	if ans.noNotices != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "judge: the server refused %s (%v): a dead-lettered thought will end in the timeout; "+
			"give the agent the import `noesis agent add` writes (docs/security.md)\n", consumers.NoticeSubject(req.thought.AgentID), ans.noNotices)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), publishTimeout)
	ack, err := storeThought(ctx, js, req.thought, req.data)
	cancel()
	if err != nil {
		return explainRefusal(nc, err, agentHint)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "judge: thought %s stored (%s seq %d); waiting for its verdict, up to %s\n",
		cli.Escape(req.thought.EventID), ack.Stream, ack.Sequence, req.timeout)
	if testHookJudgeStored != nil {
		testHookJudgeStored(req)
	}
	return judgeWait(cmd, req, ans, ack)
}

// judgeWait waits for the verdict (and narrative), prints them, and, when
// asked and the verdict requires a person, waits for their decision.
func judgeWait(cmd *cobra.Command, req judgeRequest, ans *judgeAnswers, ack *jetstream.PubAck) error {
	out := cmd.OutOrStdout()
	got, err := ans.await(cmd.Context(), req)
	if err != nil {
		return judgeWaitError(err, req, ack, "verdict", req.timeout)
	}
	if err := printJudgeVerdict(out, req, got); err != nil {
		return err
	}
	if got.narrativeMissing != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "judge: %s\n", got.narrativeMissing)
	}
	code := decisionExit(got.verdict.Decision)
	if !req.waitReview || !got.verdict.RequiresHumanReview {
		if code == exitError {
			return fmt.Errorf("verdict for %s: unknown decision %q", cli.Escape(req.thought.EventID), cli.Escape(string(got.verdict.Decision)))
		}
		return exitWith(code, nil)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "judge: the verdict (%s) requires a person; waiting for their decision on %s, up to %s\n",
		got.verdict.Decision, review.PublicSubject(req.thought.AgentID), req.reviewTimeout)
	rev, err := ans.awaitReview(cmd.Context(), req, got.verdict.Decision)
	if err != nil {
		return judgeWaitError(err, req, ack, "review", req.reviewTimeout)
	}
	if err := printJudgeReview(out, req, rev); err != nil {
		return err
	}
	if rev.Ruling.Decision == review.Pass {
		return exitWith(exitOK, nil)
	}
	return exitWith(exitFail, nil)
}

// judgeWaitError is the exit for a wait that ended without its answer.
func judgeWaitError(err error, req judgeRequest, ack *jetstream.PubAck, what string, limit time.Duration) error {
	id := cli.Escape(req.thought.EventID)
	var letter *judgeDeadLetter
	switch {
	case errors.As(err, &letter):
		return exitWith(exitDeadLetter, fmt.Errorf("thought %s was dead-lettered (stage %s): %s", id, cli.Escape(letter.stage), cli.Escape(letter.reason)))
	case errors.Is(err, context.DeadlineExceeded):
		return exitWith(exitTimeout, fmt.Errorf("no %s for thought %s within %s (it is stored: %s seq %d)", what, id, limit, ack.Stream, ack.Sequence))
	case errors.Is(err, context.Canceled):
		return exitWith(exitInterrupted, fmt.Errorf("interrupted while waiting for the %s of thought %s", what, id))
	}
	return err
}

// decisionExit is the exit code of a tribunal's decision; exitError for a
// decision this build does not know.
func decisionExit(d pipeline.Decision) int {
	switch d {
	case pipeline.DecisionPass:
		return exitOK
	case pipeline.DecisionFail:
		return exitFail
	case pipeline.DecisionReview:
		return exitReview
	case pipeline.DecisionCapital:
		return exitCapital
	case pipeline.DecisionUnavailable:
		return exitUnavailable
	}
	return exitError
}

// judgeRequestFromFlags completes req, the wait as its flags set it, with
// the thought from the flags and judge's defaults: the wait's from cfg,
// priority critical, the tribunal only (and the narrative with --narrative),
// user_input from the action.
func judgeRequestFromFlags(cmd *cobra.Command, cfg config.Config, req judgeRequest) (judgeRequest, error) {
	f := cmd.Flags()
	t, err := thoughtFromFlags(cmd, cfg.AgentID)
	if err != nil {
		return req, err
	}
	if !f.Changed("dlq") {
		req.dlq = cfg.NATSUser == "" && cfg.NATSToken == "" && cfg.NATSCreds == "" && cfg.NATSNKey == ""
	}
	if !f.Changed("timeout") {
		req.timeout = cfg.TribunalDeadline + 30*time.Second
	}
	if req.timeout <= 0 || req.reviewTimeout <= 0 {
		return req, errors.New("--timeout and --review-timeout must be positive")
	}
	if t.Priority == "" {
		t.Priority = "critical"
	}
	if t.Content.UserInput == "" && t.Action != "" {
		t.Content.UserInput = "I am about to run: " + t.Action
	}
	if err := missingFlags(t, `--action "..." or --text "..."`); err != nil {
		return req, err
	}
	if len(t.Stages) == 0 {
		t.Stages = []pipeline.Stage{pipeline.StageTribunal}
		if req.narrative {
			t.Stages = append(t.Stages, pipeline.StageNarrative)
		}
	}
	if !slices.Contains(t.Stages, pipeline.StageTribunal) {
		return req, fmt.Errorf("stages %v: judge waits for a verdict, so the thought must ask for the tribunal", t.Stages)
	}
	if req.narrative && !slices.Contains(t.Stages, pipeline.StageNarrative) {
		return req, fmt.Errorf("stages %v: --narrative waits for a narrative, so the thought must ask for it", t.Stages)
	}
	req.data, req.thought, err = encodeThought(cfg, t)
	req.subject = consumers.ThoughtSubject(req.thought.AgentID)
	return req, err
}
