// Package review is noesis's human review queue: every verdict that requires
// human review (a review, capital or unavailable decision) is queued once,
// a person decides it pass or fail with a note, exactly once, and the
// decision goes to the agent on noesis.reviews.<agent_id>.
//
// Everything lives in one stream, NOESIS_REVIEWS (Stream), which keeps at
// most one message per subject and refuses a second (discard new per
// subject): the server itself makes a review queued once and decided once,
// whoever publishes.
//
//   - _noesis.review.queued.<agent_id>.<id>: the review (Review): the
//     verdict as the agent got it, and the thought it judged (earlier
//     versions stored it under _noesis.review.queued.<id>, still read). The Clerk stores it from the
//     tribunal pool (consumers.WithReviews), with the thought the pool holds,
//     before the verdict's transcript and the verdict itself: a
//     thought redelivered after a crash queues its review again, and the
//     stream refuses the second copy, so a verdict has one review; the
//     thought, judged again, is given the verdict the first copy holds,
//     and that is the verdict published.
//   - _noesis.store.reviews.<agent_id>.<id>: the decision (Ruling), which
//     the stream republishes once, as it stores it, on
//     noesis.reviews.<agent_id>. The first reviewer's publish is stored; the
//     second is refused by the server, and Desk.Decide answers it with a
//     *DecidedError naming who decided and when.
//
// The id of a review is the digest of the thought its verdict judged
// (consumers.ThoughtDigest: 16 hex digits of the sha256 of the thought's
// subject and bytes), which ends the verdict's Nats-Msg-Id too: unique per
// agent and thought, where an event id need be unique only to its agent.
//
// A review waits until it is decided or until the stream's MaxAge (30 days
// by default) removes it; the stream is bounded in bytes, and when full it
// refuses new reviews (the pool holds their thoughts, the verdicts not yet
// published, and tries again) and new decisions (the reviewer is told).
// One agent may have at most Config.MaxPerAgent reviews waiting, so that
// no agent can fill the stream every agent's reviews need: past it the
// clerk queues none of that agent's, its verdicts are not published, and
// its thoughts are dead-lettered with the reason at once, not put back to
// wait on the consumer every agent shares (Clerk.Queue).
// Index follows the stream for a list of the reviews and their decisions,
// live.
package review
