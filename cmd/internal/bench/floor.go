package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

// FloorFigures are the same thoughts run through a worker that only moves
// messages: the JetStream work noesis does for a thought, with nothing
// between taking it and publishing its outputs.
type FloorFigures struct {
	Throughput     float64      `json:"throughput"` // thoughts/s with both outputs
	Both           StageFigures `json:"both"`
	NarrativeBytes int          `json:"narrative_bytes"` // the outputs' sizes, noesis's mean in the same run
	VerdictBytes   int          `json:"verdict_bytes"`
}

// jetStreamFloor runs o's thoughts through a fresh embedded server like the
// bench's, with streams and consumers set up as noesis sets them up, and a
// worker in this process that does for each thought what a noesis pool does
// but the stage's work: it pulls the thought, publishes an output of the
// given size with its message id and waits for the PubAck, then acks
// the thought. No model, no JSON, no cache: whatever noesis does on top of
// this costs time, so this is the most any worker can do on this machine.
// It runs after noesis's stack has stopped, so the two do not share the
// processors.
func jetStreamFloor(ctx context.Context, cfg config.Config, o benchOptions, sizes map[string]int, contents func(int) string, progress io.Writer) (*FloorFigures, error) {
	dir, err := os.MkdirTemp("", "noesis-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg.NATSURL, cfg.NATSListen, cfg.DataDir = "", "127.0.0.1:0", dir
	srv, err := consumers.StartEmbedded(cfg.Embedded(), zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	wnc, err := nats.Connect(srv.ClientURL(), nats.Name("noesis-floor-worker"))
	if err != nil {
		return nil, err
	}
	defer wnc.Close()
	wjs, err := jetstream.New(wnc)
	if err != nil {
		return nil, err
	}
	if err := consumers.EnsureStreams(ctx, wjs, cfg.Streams()); err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	var handlers sync.WaitGroup
	defer func() {
		stop()
		handlers.Wait()
	}()
	for _, stage := range []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal} {
		pc := consumers.PoolConfig{Stage: stage}
		cons, err := wjs.CreateOrUpdateConsumer(ctx, consumers.StreamThoughts, consumers.ConsumerConfig(pc))
		if err != nil {
			return nil, err
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(1024)) // a default pool's pull buffer
		if err != nil {
			return nil, err
		}
		context.AfterFunc(wctx, it.Stop)
		output := make([]byte, max(sizes[string(stage)], 1))
		slots := make(chan struct{}, 4096) // a default pool's most deliveries in hand
		handlers.Go(func() {
			for {
				msg, err := it.Next()
				if err != nil {
					return
				}
				slots <- struct{}{}
				handlers.Go(func() {
					defer func() { <-slots }()
					floorHandle(wctx, wjs, stage, msg, output)
				})
			}
		})
	}

	nc, err := nats.Connect(srv.ClientURL(), nats.Name("noesis-floor"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	arr := newArrivals(o.n)
	if err := arr.subscribe(nc, "bench"); err != nil {
		return nil, err
	}
	defer arr.close()
	fmt.Fprintf(progress, "bench pipeline: the JetStream floor, %d thoughts, rate %s\n", o.n, rateText(o.rate))
	start, err := publishThoughts(ctx, js, "bench", "bench", o.n, o.rate, contents, arr)
	if err != nil {
		return nil, err
	}
	arr.wait(60*time.Second + time.Duration(float64(o.n)/max(o.rate, 100)*float64(time.Second)))
	_, both, _ := arr.figures(map[string][]float64{})
	f := &FloorFigures{Both: both, NarrativeBytes: sizes[string(pipeline.StageNarrative)], VerdictBytes: sizes[string(pipeline.StageTribunal)]}
	if s := arr.lastArrival().Sub(start).Seconds(); s > 0 {
		f.Throughput = float64(both.Received) / s
	}
	return f, nil
}

// floorHandle is a pool's delivery with the stage's work taken out: the
// output published with its headers and message id, its PubAck awaited, the
// thought acked.
func floorHandle(ctx context.Context, js jetstream.JetStream, stage pipeline.Stage, msg jetstream.Msg, output []byte) {
	id := msg.Headers().Get(jetstream.MsgIDHeader) // the bench's thoughts carry their event id as their message id
	m := nats.NewMsg(consumers.StoreSubject(consumers.OutputSubject(stage, "bench")))
	m.Data = output
	m.Header.Set(consumers.HeaderEventID, id)
	m.Header.Set(consumers.HeaderStage, string(stage))
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(actx, m, jetstream.WithMsgID(id+"."+string(stage)), jetstream.WithExpectStream(consumers.StreamOutputs)); err != nil {
		_ = msg.Nak()
		return
	}
	_ = msg.Ack()
}
