package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/cmd/internal/reviewui"
	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
)

func newReviewCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "review",
		Short: "Decide the verdicts that require human review (list, show, decide, serve)",
		Long: `A verdict whose decision is review, capital or unavailable waits in the review
queue (NOESIS_REVIEWS) until a person decides it pass or fail, with a note; the
decision goes to the agent on noesis.reviews.<agent_id>, once. Under nats-auth.conf,
log in as a reviewer: NATS_USER=reviewer NATS_PASSWORD=... (the NATS user is the
reviewer a decision records). 'serve' runs the same as a web page.`,
	}
	cmd.AddCommand(newReviewListCmd(), newReviewShowCmd(), newReviewDecideCmd(), newReviewServeCmd())
	return cmd
}

func newReviewListCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List the reviews waiting for a decision, oldest first (--all: the decided too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, nc, js, err := connect(cmd, "noesis-review")
			if err != nil {
				return err
			}
			defer nc.Close()
			if err := readable(cmd.Context(), nc, js, review.Stream, reviewerHint); err != nil {
				return err
			}
			x, err := review.Load(cmd.Context(), js)
			if err != nil {
				return err
			}
			all, _ := cmd.Flags().GetBool("all")
			list := x.List(!all)
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return cli.WriteJSON(cmd.OutOrStdout(), summariesJSON(list))
			}
			return printReviews(cmd.OutOrStdout(), list, all)
		},
	}
	c.Flags().Bool("all", false, "list the decided reviews too")
	c.Flags().Bool("json", false, "print JSON")
	return c
}

// summaryJSON is a review in `review list --json`.
type summaryJSON struct {
	ID              string         `json:"id"`
	EventID         string         `json:"event_id"`
	AgentID         string         `json:"agent_id"`
	VerdictDecision string         `json:"verdict_decision"`
	QueuedAt        time.Time      `json:"queued_at"`
	Decision        *review.Ruling `json:"decision,omitempty"`
}

func summariesJSON(list []review.Summary) []summaryJSON {
	out := []summaryJSON{}
	for _, s := range list {
		out = append(out, summaryJSON{s.ID, s.EventID, s.AgentID, s.VerdictDecision, s.QueuedAt, s.Decided})
	}
	return out
}

// printReviews prints the list as a table; what agents wrote is escaped.
func printReviews(w io.Writer, list []review.Summary, all bool) error {
	t := cli.Table(w)
	head := []string{"ID", "Waiting", "Agent", "Event", "Verdict"}
	if all {
		head = append(head, "Decision", "By", "Decided")
	}
	t.Header(head)
	waiting := 0
	for _, s := range list {
		age := time.Since(s.QueuedAt).Truncate(time.Second).String()
		row := []string{s.ID, age, cli.Escape(s.AgentID), cli.Clip(cli.Escape(s.EventID), 60), cli.Escape(s.VerdictDecision)}
		if s.Waiting() {
			waiting++
		} else {
			row[1] = "-"
		}
		if all {
			if d := s.Decided; d != nil {
				row = append(row, cli.Escape(d.Decision), cli.Escape(d.Reviewer), d.DecidedAt.UTC().Format(time.DateTime))
			} else {
				row = append(row, "", "", "")
			}
		}
		_ = t.Append(row)
	}
	if err := t.Render(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d waiting\n", waiting)
	return err
}

func newReviewShowCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "show ID",
		Short: "Show a review: the thought, the verdict, each judge's vote and reasoning, and its decision",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, nc, js, err := connect(cmd, "noesis-review")
			if err != nil {
				return err
			}
			defer nc.Close()
			desk := review.NewDesk(js)
			r, err := desk.Review(cmd.Context(), args[0])
			if err != nil {
				return explainRefusal(nc, err, reviewerHint)
			}
			var decided *review.Ruling
			if d, err := desk.Decision(cmd.Context(), r.AgentID, r.ID); err == nil {
				decided = &d
			} else if !errors.Is(err, review.ErrNotFound) {
				return explainRefusal(nc, err, reviewerHint)
			}
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return cli.WriteJSON(cmd.OutOrStdout(), struct {
					review.Review
					Decision *review.Ruling `json:"decision,omitempty"`
				}{r, decided})
			}
			return showReview(cmd.OutOrStdout(), r, decided)
		},
	}
	c.Flags().Bool("json", false, "print the review (and its decision) as JSON")
	return c
}

// showReview prints one review for a person; what agents and judges wrote
// is escaped.
func showReview(w io.Writer, r review.Review, decided *review.Ruling) error {
	line := func(label, text string) { fmt.Fprintf(w, "%-10s %s\n", label, text) }
	line("review", r.ID)
	line("agent", cli.Escape(r.AgentID))
	line("event", cli.Escape(r.EventID))
	line("queued", fmt.Sprintf("%s (%s ago)", r.QueuedAt.UTC().Format(time.RFC3339), time.Since(r.QueuedAt).Truncate(time.Second)))
	v, verr := r.ReadVerdict()
	if verr != nil {
		line("verdict", cli.Escape(r.VerdictDecision)+" (unreadable: "+cli.Escape(verr.Error())+")")
	} else {
		line("verdict", fmt.Sprintf("%s, %s, offense %s", cli.Escape(string(v.Decision)), consensusText(v.Decision, v.ConsensusScore, v.Judges), cli.Escape(string(v.OffenseLevel))))
	}
	if t, ok := r.ReadThought(); ok {
		line("thought", cli.Escape(t.Content.UserInput))
		for _, f := range [][2]string{{"action", t.Action}, {"outcome", t.Outcome}, {"reasoning", t.ReasoningTrace}} {
			if f[1] != "" {
				line(f[0], cli.Escape(f[1]))
			}
		}
	} else {
		line("thought", "not here: "+cli.Escape(r.ThoughtMissing))
	}
	if verr == nil {
		fmt.Fprintln(w, "judges")
		for _, j := range v.Judges {
			if j.Abstained || j.Verdict == pipeline.VoteAbstain { // no vote: no confidence or offense to show
				fmt.Fprintf(w, "  %-8s ABSTAIN (%s): %s\n", cli.Escape(j.Name), cli.Escape(j.AbstainKind), cli.Escape(j.AbstainReason))
				continue
			}
			fmt.Fprintf(w, "  %-8s %-8s %.2f  %-8s %s\n", cli.Escape(j.Name), cli.Escape(string(j.Verdict)), j.Confidence, cli.Escape(string(j.Offense)), cli.Escape(j.Reasoning))
		}
	}
	if decided != nil {
		line("decision", fmt.Sprintf("%s by %s at %s: %s", decided.Decision, cli.Escape(decided.Reviewer), decided.DecidedAt.UTC().Format(time.RFC3339), cli.Escape(decided.Note)))
	} else {
		line("decision", "waiting: noesis review decide "+r.ID+" pass|fail --note \"...\"")
	}
	return nil
}

func newReviewDecideCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "decide ID pass|fail --note \"why\"",
		Short: "Decide a review, once: the agent hears it on noesis.reviews.<agent_id>",
		Long: `Decide a review pass or fail, with a note saying why (required). A review is
decided once: when someone decided it first, this says who and when, and fails.
The reviewer recorded is the NATS user (NATS_USER), or without one the login name.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			note, _ := cmd.Flags().GetString("note")
			if strings.TrimSpace(note) == "" {
				return fmt.Errorf("a decision needs a note saying why: give --note \"...\" (the agent reads it)")
			}
			cfg, nc, js, err := connect(cmd, "noesis-review")
			if err != nil {
				return err
			}
			defer nc.Close()
			d, err := review.NewDesk(js).Decide(cmd.Context(), args[0], review.Choice{Decision: strings.ToLower(args[1]), Note: note, Reviewer: reviewerName(cfg)})
			if err != nil {
				return explainRefusal(nc, err, reviewerHint)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "decided %s: review %s (agent %s, event %s), by %s at %s\n", d.Decision, d.ReviewID,
				cli.Escape(d.AgentID), cli.Escape(d.EventID), cli.Escape(d.Reviewer), d.DecidedAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	c.Flags().String("note", "", "why (required; the agent reads it)")
	return c
}

// reviewerName is who a decision from the command line records: the NATS
// user it logged in as, or without one (a server with no access control)
// the login name.
func reviewerName(cfg config.Config) string {
	if cfg.NATSUser != "" {
		return cfg.NATSUser
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "operator"
}

func newReviewServeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the reviewers' web page (basic auth with a NATS reviewer login)",
		Long: `Serve the reviewers' web page on --listen (default 127.0.0.1:8380): the queue,
live, each review with its thought and the judges' votes and reasoning, and pass or
fail with a note. A browser logs in with a NATS user and password that may read
the review queue (nats-auth.conf's reviewer); the page connects to NATS_URL as
that user. On a server without access control (make run's embedded one) any
user name and password log in, and the name is the reviewer a decision records.
Put it behind TLS when it listens beyond this machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(cmd)
			if err != nil {
				return err
			}
			log := cli.NewLogger(cfg, cmd.ErrOrStderr())
			listen, _ := cmd.Flags().GetString("listen")
			url := cfg.NATSURL
			if url == "" {
				url = "nats://" + cfg.NATSListen
			}
			tlsCfg := cfg
			tlsCfg.NATSUser, tlsCfg.NATSPassword, tlsCfg.NATSCreds, tlsCfg.NATSNKey, tlsCfg.NATSToken = "", "", "", "", "" // each reviewer's own
			opts, err := service.NATSOptions(tlsCfg, "noesis-review-page")
			if err != nil {
				return err
			}
			srv, err := reviewui.New(reviewui.Config{Listen: listen, NATSURL: url, NATSOptions: opts}, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "review page on http://%s/\n", srv.Addr())
			return srv.Run(cmd.Context())
		},
	}
	c.Flags().String("listen", reviewui.DefaultListen, "address to listen on")
	return c
}
