package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/embedded"
	"github.com/noesis-dev/noesis/pipeline"
)

// FloorFigures are the same thoughts run through a worker that only moves
// messages: the JetStream work noesis does for a thought, with nothing
// between taking it and publishing its outputs.
type FloorFigures struct {
	Throughput     float64        `json:"throughput"`       // thoughts/s with both outputs
	Seconds        float64        `json:"seconds"`          // first publish to last output
	LongestPauseMs float64        `json:"longest_pause_ms"` // the longest time with no output arriving
	Stages         []StageFigures `json:"stages"`
	Both           StageFigures   `json:"both"`
	NarrativeBytes int            `json:"narrative_bytes"` // the outputs' sizes, noesis's mean in the same run
	VerdictBytes   int            `json:"verdict_bytes"`
	// TranscriptBytes is the transcript stored before each verdict, noesis's
	// mean in the same run (0: noesis stored none, nor does the floor).
	TranscriptBytes int `json:"transcript_bytes"`
	// MachineBusyPct is how busy the machine's processors were from the
	// first publish to the last output (Linux only).
	MachineBusyPct float64 `json:"machine_busy_pct,omitempty"`
	// PeakRSSMB is the floor's worker's peak resident memory, when it ran
	// as a process of its own (the client floor, unless --in-process).
	PeakRSSMB float64 `json:"worker_peak_rss_mb,omitempty"`
}

// jetStreamFloor runs o's thoughts through a fresh embedded server like the
// bench's, with streams and consumers set up as noesis sets them up, and a
// worker in this process that does for each thought what a noesis pool does
// but the stage's work: it pulls the thought, publishes an output of the
// given size with its message id and waits for the PubAck (for the
// tribunal, first a transcript of the size noesis's had, on
// NOESIS_TRANSCRIPTS, as a pool stores it before the verdict), then acks
// the thought. No model, no JSON, no cache: whatever noesis does on top of
// this costs time, so this is the most any worker can do on this machine.
// It runs after noesis's stack has stopped, so the two do not share the
// processors.
func jetStreamFloor(ctx context.Context, cfg config.Config, o benchOptions, sizes map[string]int, contents func(int) string, progress io.Writer) (*FloorFigures, error) {
	return runFloor(ctx, cfg, o, sizes, contents, "the JetStream floor", 0, nil, nil, progress)
}

// floorWork is what a floor's worker does with a thought before it
// publishes the stage's output; an error naks the thought.
type floorWork func(ctx context.Context, stage pipeline.Stage, msg jetstream.Msg) error

// runFloor runs o's thoughts through a floor worker (see jetStreamFloor)
// that does work, when set, for each delivery before its publish; or,
// with spawn set, through the worker process spawn starts on the server.
//
// With warmup, the offered rate first grows from 0 over it, as the bench's
// --warmup does for noesis, and those thoughts are left out of the figures.
func runFloor(ctx context.Context, cfg config.Config, o benchOptions, sizes map[string]int, contents func(int) string, name string, warmup time.Duration, work floorWork, spawn func(natsURL string) (*floorProcess, error), progress io.Writer) (*FloorFigures, error) {
	dir, err := os.MkdirTemp("", "noesis-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg.NATSURL, cfg.NATSListen, cfg.DataDir = "", "127.0.0.1:0", dir
	srv, err := embedded.Start(cfg.Embedded(), zerolog.Nop())
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
	var child *floorProcess
	if spawn != nil {
		if child, err = spawn(srv.ClientURL()); err != nil {
			return nil, err
		}
		defer child.stop()
	} else {
		wctx, stop := context.WithCancel(ctx)
		var handlers sync.WaitGroup
		defer func() {
			stop()
			handlers.Wait()
		}()
		if err := floorWorker(wctx, wjs, sizes, work, &handlers); err != nil {
			return nil, err
		}
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
	warm := rampLen(o.rate, warmup)
	arr := newArrivals(warm + o.n)
	arr.from = warm
	if err := arr.subscribe(nc, "bench"); err != nil {
		return nil, err
	}
	defer arr.close()
	fmt.Fprintf(progress, "bench pipeline: %s, %d thoughts after %d of warm-up, rate %s\n", name, o.n, warm, rateText(o.rate))
	cpu := startCPUSampler(nil)
	if _, err := publishRamped(ctx, js, "bench", "bench", warm+o.n, o.rate, warmup, contents, arr); err != nil {
		cpu.close()
		return nil, err
	}
	start := arr.publishedAt(warm)
	arr.wait(o.outputWait(cfg, warm+o.n))
	cpu.close()
	stages, both, _ := arr.figures(map[string][]float64{})
	f := &FloorFigures{Stages: stages, Both: both, NarrativeBytes: sizes[string(pipeline.StageNarrative)], VerdictBytes: sizes[string(pipeline.StageTribunal)],
		TranscriptBytes: sizes[transcriptKey]}
	if busy, _, ok := cpu.window(start, arr.lastArrival()); ok {
		f.MachineBusyPct = 100 * busy
	}
	if s := arr.lastArrival().Sub(start).Seconds(); s > 0 {
		f.Seconds, f.Throughput = s, float64(both.Received)/s
	}
	f.LongestPauseMs = ms(arr.longestPause())
	if child != nil {
		if ended, err := child.exited(); ended { // its figures would be a part's
			return nil, fmt.Errorf("%s: its worker exited during the run (%v): %s", name, err, strings.TrimSpace(child.stderr()))
		}
		f.PeakRSSMB = child.peakRSSMB()
	}
	return f, nil
}

// floorWorker pulls each stage's thoughts as a default pool does (its pull
// buffer, its most deliveries in hand) and handles each in a goroutine of
// its own, counted in handlers, until ctx ends.
func floorWorker(ctx context.Context, js jetstream.JetStream, sizes map[string]int, work floorWork, handlers *sync.WaitGroup) error {
	for _, stage := range []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal} {
		pc := consumers.PoolConfig{Stage: stage}
		cons, err := js.CreateOrUpdateConsumer(ctx, consumers.StreamThoughts, consumers.ConsumerConfig(pc))
		if err != nil {
			return err
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(1024), jetstream.PullHeartbeat(consumers.PullHeartbeat)) // a default pool's pull
		if err != nil {
			return err
		}
		context.AfterFunc(ctx, it.Stop)
		outputs := floorOutputs{output: make([]byte, max(sizes[string(stage)], 1))}
		if n := sizes[transcriptKey]; n > 0 && stage == pipeline.StageTribunal {
			outputs.transcript = make([]byte, n)
		}
		slots := make(chan struct{}, 4096) // a default pool's most deliveries in hand
		handlers.Go(func() {
			for {
				msg, err := it.Next(jetstream.NextMaxWait(consumers.NextWait)) // as a pool's puller calls it
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				if err != nil { // nothing within NextWait, or a missed heartbeat: Next again, which asks again if it must
					continue
				}
				slots <- struct{}{}
				handlers.Go(func() {
					defer func() { <-slots }()
					if work != nil && work(ctx, stage, msg) != nil {
						_ = msg.Nak()
						return
					}
					floorHandle(ctx, js, stage, msg, outputs)
				})
			}
		})
	}
	return nil
}

// floorOutputs are what a floor worker stores for one thought of a stage:
// the output, and before it, for the tribunal, a transcript (nil: none).
type floorOutputs struct {
	output, transcript []byte
}

// floorHandle is a pool's delivery with the stage's work taken out: the
// transcript, if any, then the output published with its headers and
// message id, each PubAck awaited, the thought acked.
func floorHandle(ctx context.Context, js jetstream.JetStream, stage pipeline.Stage, msg jetstream.Msg, outputs floorOutputs) {
	id := msg.Headers().Get(jetstream.MsgIDHeader) // the bench's thoughts carry their event id as their message id
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if outputs.transcript != nil {
		if floorPublish(actx, js, consumers.TranscriptSubject("bench"), consumers.StreamTranscripts, id, stage, outputs.transcript) != nil {
			_ = msg.Nak()
			return
		}
	}
	if floorPublish(actx, js, consumers.OutputSubject(stage, "bench"), consumers.StreamOutputs, id, stage, outputs.output) != nil {
		_ = msg.Nak()
		return
	}
	_ = msg.Ack()
}

// floorPublish stores data on stream under subject's store subject, with
// the stage's headers and message id, and waits for the PubAck.
func floorPublish(ctx context.Context, js jetstream.JetStream, subject, stream, id string, stage pipeline.Stage, data []byte) error {
	m := nats.NewMsg(consumers.StoreSubject(subject))
	m.Data = data
	m.Header.Set(consumers.HeaderEventID, id)
	m.Header.Set(consumers.HeaderStage, string(stage))
	_, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(id+"."+string(stage)), jetstream.WithExpectStream(stream))
	return err
}
