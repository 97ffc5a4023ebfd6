package consumers

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// delivery is one delivery of a thought, as the pool pulled and read it, on
// its way through the pool's chain.
type delivery struct {
	msg            jetstream.Msg
	seq, delivered uint64
	thought        pipeline.Thought
	err            error // the thought cannot be read
	agent          string
	base           *zerolog.Logger // the pool's logger; logger adds the thought's fields
	logOnce        sync.Once
	log            zerolog.Logger // logger's, once made
	watch          watch          // its stage at work, while the pool's watches hold it (logged)
	thoughtDigest  string         // digest's, once made
}

// logger is the pool's logger with the thought's seq, delivery and, when
// it could be read, event id and agent, made at the first line that needs
// it: most deliveries write none but their output's line, which adds the
// fields itself (with), and a logger of its own a delivery (zerolog's
// context is a 500-byte buffer) was 5 % of the bytes a worker allocated on
// cache hits. Safe for concurrent use.
func (d *delivery) logger() *zerolog.Logger {
	d.logOnce.Do(func() { d.log = d.with(d.pool().With()).Logger() })
	return &d.log
}

// nop is the logger of a delivery made with none.
var nop = zerolog.Nop()

// pool is the pool's logger, or nop for a delivery made without one.
func (d *delivery) pool() *zerolog.Logger {
	if d.base == nil {
		return &nop
	}
	return d.base
}

// with adds the thought's fields to c, as logger's.
func (d *delivery) with(c zerolog.Context) zerolog.Context {
	c = c.Uint64("seq", d.seq).Uint64("delivery", d.delivered)
	if d.err == nil {
		c = c.Str("event_id", d.thought.EventID).Str("agent_id", d.thought.AgentID)
	}
	return c
}

// fields adds the thought's fields to e, in logger's order.
func (d *delivery) fields(e *zerolog.Event) *zerolog.Event {
	e = e.Uint64("seq", d.seq).Uint64("delivery", d.delivered)
	if d.err == nil {
		e = e.Str("event_id", d.thought.EventID).Str("agent_id", d.thought.AgentID)
	}
	return e
}

// debug is the logger's debug event, nil (every method a no-op) when the
// pool's logger writes no debug lines, without making the logger then.
func (d *delivery) debug() *zerolog.Event {
	if d.pool().GetLevel() > zerolog.DebugLevel || zerolog.GlobalLevel() > zerolog.DebugLevel {
		return nil
	}
	return d.logger().Debug()
}

// digest is ThoughtDigest of the delivery's message, made once: its output
// and its transcript are published with it.
func (d *delivery) digest() string {
	if d.thoughtDigest == "" {
		d.thoughtDigest = ThoughtDigest(d.msg.Subject(), d.msg.Data())
	}
	return d.thoughtDigest
}

// result is what a delivery came to: the stage's output and what the pool
// does with the thought's message.
type result struct {
	out    pipeline.Output
	took   time.Duration // how long the stage's last try took, its outputs' publish included
	dup    bool          // the stream already held the output
	settle settlement
}

// settlement is what the pool does with a thought's message once the chain
// has run: ack it, nak it for redelivery after a delay, or term it (its dead
// letter stored).
type settlement struct {
	op     settleOp
	delay  time.Duration // nak: how long before the redelivery
	reason string        // term: why the thought was given up
}

// settleOp is how a message is settled.
type settleOp int

const (
	ack  settleOp = iota // done: its outputs are stored, or it needed none
	nak                  // try again after the delay
	term                 // given up: its dead letter is stored
)
