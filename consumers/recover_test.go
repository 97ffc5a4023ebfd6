package consumers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// A panic in the handler is an error that dead-letters its thought, with the
// panic's value in the message and its stack in the transcript.
func TestAPanicIsAPermanentFailureWithItsStack(t *testing.T) {
	h := recovered(func(context.Context, *delivery) (result, error) { panic("a bug") })
	r, err := h(context.Background(), &delivery{log: zerolog.Nop()})
	var partial *pipeline.PartialError
	if !errors.Is(err, pipeline.ErrPanic) || !errors.Is(err, pipeline.ErrPermanent) || !errors.As(err, &partial) || r.out != nil {
		t.Fatalf("result %+v, error %v: want a permanent ErrPanic", r, err)
	}
	tr, _ := partial.Transcript.(map[string]string)
	if !strings.Contains(err.Error(), "a bug") || tr["panic"] != "a bug" || !strings.Contains(tr["stack"], "recover_test.go") {
		t.Errorf("error %q, transcript %v", err, tr)
	}
	ok := recovered(func(context.Context, *delivery) (result, error) { return result{out: &pipeline.Narrative{}}, nil })
	if r, err := ok(context.Background(), &delivery{}); err != nil || r.out == nil {
		t.Errorf("without a panic: %+v, %v", r, err)
	}
}
