package consumers

import (
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
	log            zerolog.Logger // carries the thought's seq, delivery, event id and agent
	watch          watch          // its stage at work, while the pool's watches hold it (logged)
	thoughtDigest  string         // digest's, once made
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
