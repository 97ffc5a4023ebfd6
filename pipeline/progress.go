package pipeline

import (
	"context"
	"sync/atomic"
)

// Progress counts a stage's model answers as they come in, so whoever runs
// the stage can say how far a long one has got ("judges answered 2/3").
// A stage that makes one call reports nothing: 0 of 0. The zero value is
// ready; safe for concurrent use; a nil *Progress counts nothing.
type Progress struct {
	asked, answers atomic.Int32
}

type progressKey struct{}

// WithProgress returns ctx carrying p, which the stage run under it reports to.
func WithProgress(ctx context.Context, p *Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

func progressOf(ctx context.Context) *Progress {
	p, _ := ctx.Value(progressKey{}).(*Progress)
	return p
}

// Answered returns how many of the calls asked have been answered (an
// abstention counts: its judge is done).
func (p *Progress) Answered() (answered, asked int) {
	if p == nil {
		return 0, 0
	}
	return int(p.answers.Load()), int(p.asked.Load())
}

func (p *Progress) begin(n int) {
	if p != nil {
		p.asked.Store(int32(n))
		p.answers.Store(0)
	}
}

func (p *Progress) answer() {
	if p != nil {
		p.answers.Add(1)
	}
}
