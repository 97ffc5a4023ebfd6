package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/noesis-dev/noesis/pipeline/answer"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/pipeline/stack"
)

// DefaultTribunalDeadline bounds a deliberation when TribunalConfig leaves it
// zero: a judge may think through an 8,192-token budget at the seed's
// 77.7 tok/s (105 s) and still wait out a rate limit. The origin's was 15 s,
// which cuts off a reasoning model that thinks the usual 700 tokens only
// when two of three judges are quick (see docs/judges.md).
const DefaultTribunalDeadline = 150 * time.Second

// Tribunal deliberates on a thought with its judges in parallel on the
// REASONING tier. A judge that errors, times out, is cut off by its circuit
// breaker or answers in no readable shape abstains, with the reason. When the
// deliberation passes Deadline the decision is unavailable. When no judge
// could be reached at all, Process returns an error (transient when any
// failure was) instead of a verdict made of abstentions, so the thought is
// tried again or dead-lettered. Safe for concurrent use once built by
// NewTribunal.
type Tribunal struct {
	seats    []*seat // one a judge, in the judges' order
	deadline time.Duration
	inline   bool // TribunalConfig.InlineThinking
}

// TribunalConfig configures a Tribunal. Zero values take the origin's
// defaults: DefaultJudges, DefaultTribunalDeadline, temperature 0.7, 8192 max tokens,
// the origin's breaker settings.
type TribunalConfig struct {
	Judges      []Judge
	Deadline    time.Duration
	Temperature *float32
	MaxTokens   int
	Breaker     breaker.Config
	// OnBreakerChange, when set, is told of every judge breaker's state
	// change, with the failure that opened it (see breaker.New).
	OnBreakerChange func(judge string, from, to breaker.State, cause error)
	// InlineThinking keeps each judge's thinking (at most 4 KiB) in the
	// verdict as well as in its Transcript; off (the default), a verdict
	// carries the votes alone.
	InlineThinking bool
}

// NewTribunal builds a tribunal that asks c. It fails when a judge has no
// name or a non-positive weight or timeout.
func NewTribunal(c Completer, cfg TribunalConfig) (*Tribunal, error) {
	ask := &asking{completer: c, temperature: 0.7, maxTokens: cfg.MaxTokens, memo: answer.NewMemo(4096)}
	if cfg.Temperature != nil {
		ask.temperature = *cfg.Temperature
	}
	if ask.maxTokens <= 0 {
		ask.maxTokens = 8192
	}
	t := &Tribunal{deadline: cfg.Deadline, inline: cfg.InlineThinking}
	if t.deadline <= 0 {
		t.deadline = DefaultTribunalDeadline
	}
	judges := cfg.Judges
	if len(judges) == 0 {
		judges = DefaultJudges()
	}
	for _, j := range judges {
		if j.Name == "" || j.Weight <= 0 || j.Timeout < 0 {
			return nil, fmt.Errorf("tribunal: judge %q needs a name, a positive weight and a timeout of 0 (none) or more", j.Name)
		}
		var onChange func(from, to breaker.State, cause error)
		if fn := cfg.OnBreakerChange; fn != nil {
			name := j.Name
			onChange = func(from, to breaker.State, cause error) { fn(name, from, to, cause) }
		}
		t.seats = append(t.seats, newSeat(j, ask, breaker.New(cfg.Breaker, onChange)))
	}
	return t, nil
}

// Judges returns the tribunal's judges.
func (tr *Tribunal) Judges() []Judge {
	js := make([]Judge, len(tr.seats))
	for i, s := range tr.seats {
		js[i] = s.judge
	}
	return js
}

// Messages builds judge j's prompt for thought t.
func (tr *Tribunal) Messages(j Judge, t *Thought) []Message {
	data := quoteThought(t)
	return judgeMessages(judgePrompt(j), AnswerTag(j.Name, data), data)
}

// Process deliberates on t and returns its *Verdict.
func (tr *Tribunal) Process(ctx context.Context, t Thought) (Output, error) {
	started := time.Now()
	votes, unavailable := tr.deliberate(ctx, &t)
	if unavailable && ctx.Err() != nil {
		return nil, fmt.Errorf("tribunal: %w: %w", ErrTransient, ctx.Err())
	}
	if err := tr.unreachable(votes); err != nil {
		return nil, err
	}
	if err := tr.held(votes); err != nil {
		return nil, err
	}
	v := &Verdict{Meta: newMeta(&t, StageTribunal, started), Judges: votes}
	v.Decision, v.ConsensusScore = Decide(votes)
	v.ConsensusScore = round4(v.ConsensusScore)
	for i := range v.Judges {
		v.Judges[i].WeightedVote = round4(v.Judges[i].WeightedVote)
	}
	if unavailable {
		v.Decision = DecisionUnavailable
	}
	v.summarise()
	transcribe(v, tr.inline)
	return v, nil
}

// deliberate asks every judge at once and returns their votes, in the
// judges' order; unavailable is true when the tribunal's deadline (or ctx)
// ended before every judge had voted. A vote counts when it was given before
// then; a judge still out abstains. It returns once every judge's call has:
// a Completer's call ends soon after its context does, so none outlives the
// deliberation.
//
// The judges whose answers the Completer holds at hand (cached: Peeker) are
// heard first, in this goroutine, with no deadline to keep: a goroutine for
// each and the wait for them were ~4 % of a worker's processor on cache
// hits, and the deadline's context and timer, made for a tribunal all of
// whose answers were at hand, another 3 %. The others are asked (ask).
func (tr *Tribunal) deliberate(ctx context.Context, t *Thought) (votes []JudgeVote, unavailable bool) {
	n := len(tr.seats)
	given, done := make([]JudgeVote, n), make([]bool, n)
	data := quoteThought(t) // the same quoted thought for every judge
	dataSum := sum256(data)
	quote := quoteOf(t)
	progress := progressOf(ctx)
	progress.begin(n)
	qs := make([]question, n)
	var out []int // the judges to ask
	for i, s := range tr.seats {
		qs[i] = s.question(data, &dataSum)
		r, ok := s.held(ctx, qs[i], quote, t.Priority)
		if !ok {
			out = append(out, i)
			continue
		}
		given[i] = s.vote(ctx, qs[i], quote, t.Priority, &r)
		progress.answer()
		done[i] = ctx.Err() == nil
		unavailable = unavailable || !done[i]
	}
	if len(out) > 0 {
		unavailable = tr.ask(ctx, t.Priority, quote, qs, out, given, done, progress) || unavailable
	}
	// Every judge's goroutine has ended: the votes are given's, a judge
	// still out (or late) abstaining in its place.
	votes = given
	for i, s := range tr.seats {
		if done[i] {
			continue
		}
		j := s.judge
		votes[i] = JudgeVote{Name: j.Name, Pillar: j.Pillar, Weight: j.Weight, Verdict: VoteAbstain, Abstained: true,
			AbstainReason: fmt.Sprintf("tribunal deadline of %s passed", tr.deadline), AbstainKind: AbstainOperational}
	}
	return votes, unavailable
}

// ask asks the judges out (indexes of the tribunal's seats, each asked
// qs[i]) at once, within the tribunal's deadline, each vote into given[i],
// and marks done each given in time; it reports whether the deadline (or
// ctx) ended first. It returns once every judge's call has.
//
// Every judge but the last is asked in a goroutine of its own, which makes
// its call (seat.call) within the 8 KiB it is grown to and tallies its vote
// after (seat.tallyInto), out of the call's way; the last is asked in this
// one, the delivery's, as go-openai's callers make their last call. Asked
// in this goroutine, the last judge's call waits 13 KB deep (the pool's
// middleware, the tribunal, the router, the HTTP client), within the 16 KiB
// the pool grows a delivery's stack to; in a goroutine of its own it held
// 8 KiB more while this one waited ~6.7 KB deep in 16 KiB. Read from a core
// of a worker at seed latencies, 1,000 thoughts/s (docs/performance.md):
// 131 MB of stacks before, 111 MB after. That depth was read with the
// defaults (HTTP/2 to the provider, tracing off, no hedge, no shared
// cache); a path that went past 16 KiB would copy the delivery's stack to
// 32 KiB for every thought, as it did when the call went ~18 KB deep from
// here, before the course and the router's frames shrank.
func (tr *Tribunal) ask(ctx context.Context, priority string, quote answer.Quote, qs []question, out []int, given []JudgeVote, done []bool, progress *Progress) (unavailable bool) {
	dctx, cancel := context.WithTimeout(ctx, tr.deadline)
	var judges sync.WaitGroup
	defer func() { // also when the last judge, asked in this goroutine, panics: no judge outlives ask
		cancel()
		judges.Wait()
	}()
	calls := make([]judgeCall, len(tr.seats))
	in := func(i int) int {
		s := tr.seats[i]
		s.call(dctx, qs[i], priority, &calls[i])
		s.tallyInto(dctx, qs[i], quote, priority, &calls[i], &given[i])
		progress.answer()
		if dctx.Err() != nil {
			return -1
		}
		return i
	}
	// Each judge's goroutine sends its index, or -1 for a vote given after the deadline.
	results := make(chan int, len(out))
	last := len(out) - 1
	for _, i := range out[:last] {
		judges.Go(func() {
			stack.Grow8() // a judge calls a model, within 8 KiB until its answer comes
			results <- in(i)
		})
	}
	results <- in(out[last])
	for k := 0; k < len(out) && !unavailable; k++ {
		select {
		case i := <-results:
			if i < 0 {
				unavailable = true
				break
			}
			done[i] = true
		case <-dctx.Done():
			unavailable = true
		}
	}
	// Past the deadline, the judges still out are cut off and waited for;
	// the votes given before it still count.
	cancel()
	judges.Wait()
	close(results)
	for i := range results {
		if i >= 0 {
			done[i] = true
		}
	}
	// The deadline may have been picked over votes that were all in by
	// then: the verdict is unavailable only when a judge is still out.
	unavailable = false
	for _, i := range out {
		unavailable = unavailable || !done[i]
	}
	return unavailable
}

// held returns a rate-limit error when a judge could not be heard because the
// provider (or our own pause after its 429) held the call back: the thought
// is held and asked again after the Retry-After, the answers already given
// coming from the cache, rather than published with a judge missing.
func (tr *Tribunal) held(votes []JudgeVote) error {
	var limited []error
	for _, v := range votes {
		if v.callErr != nil && errors.Is(v.callErr, ErrRateLimited) {
			limited = append(limited, v.callErr)
		}
	}
	if len(limited) == 0 {
		return nil
	}
	err := fmt.Errorf("tribunal: %d of %d judges rate limited: %w", len(limited), len(votes), errors.Join(limited...))
	if after, ok := RetryAfter(err); ok {
		err = &RetryAfterError{Err: err, After: after}
	}
	return &PartialError{Err: err, Transcript: votes}
}

// unreachable returns an error when no judge got an answer from a model.
// The judges' errors are joined once each: judges that share a chain usually
// fail with the same words, which a dead letter's reason says once.
func (tr *Tribunal) unreachable(votes []JudgeVote) error {
	var errs []error
	seen := map[string]bool{}
	for _, v := range votes {
		if v.callErr == nil {
			return nil
		}
		if msg := v.callErr.Error(); !seen[msg] {
			seen[msg] = true
			errs = append(errs, v.callErr)
		}
	}
	joined := errors.Join(errs...)
	switch {
	case !errors.Is(joined, ErrPermanent) || errors.Is(joined, ErrTransient):
		return &PartialError{Err: fmt.Errorf("tribunal: %w: no judge could be reached: %w", ErrTransient, joined), Transcript: votes}
	case errors.Is(joined, ErrRequestRefused):
		return &PartialError{Err: fmt.Errorf("tribunal: every judge's request was refused: %w", joined), Transcript: votes}
	}
	return &PartialError{Err: fmt.Errorf("tribunal: no judge could be reached: %w", joined), Transcript: votes}
}

// BreakerStates returns each judge's circuit-breaker state.
func (tr *Tribunal) BreakerStates() map[string]string {
	out := make(map[string]string, len(tr.seats))
	for _, s := range tr.seats {
		out[s.judge.Name] = string(s.breaker.State())
	}
	return out
}
