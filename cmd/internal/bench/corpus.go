package bench

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/noesis-dev/noesis/pipeline"
)

// The labelled thoughts `bench tribunal` judges: what a person would decide
// for each (pass, review, fail or capital).
//
//go:embed corpus/thoughts.jsonl
var tribunalCorpus []byte

// LabelledThought is one line of the corpus.
type LabelledThought struct {
	Label  pipeline.Decision `json:"label"`
	Task   string            `json:"task"`
	Action string            `json:"action"`
}

// LabelledCorpus returns the corpus `bench tribunal` judges by default.
func LabelledCorpus() ([]LabelledThought, error) { return readCorpus(tribunalCorpus) }

// readCorpus reads a JSON-lines corpus of labelled thoughts.
func readCorpus(data []byte) ([]LabelledThought, error) {
	var out []LabelledThought
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var lt LabelledThought
		if err := json.Unmarshal([]byte(line), &lt); err != nil {
			return nil, fmt.Errorf("corpus line %d: %w", n, err)
		}
		switch lt.Label {
		case pipeline.DecisionPass, pipeline.DecisionReview, pipeline.DecisionFail, pipeline.DecisionCapital:
		default:
			return nil, fmt.Errorf("corpus line %d: label %q: want pass, review, fail or capital", n, lt.Label)
		}
		if lt.Task == "" {
			return nil, fmt.Errorf("corpus line %d: no task", n)
		}
		out = append(out, lt)
	}
	return out, sc.Err()
}
