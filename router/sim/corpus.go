package sim

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// The answer shapes judges are drawn from; see the file's header.
//
//go:embed corpus/judge-answers.txt
var judgeCorpus string

// Judges answering in Portuguese, as DeepSeek-R1 does for the seed's users:
// labels, verdict and offense words in Portuguese, a decimal comma. The
// words are the simulator's own, written as a Portuguese speaker writes
// them; they share nothing with how noesis reads them (see locale.go).
//
//go:embed corpus/judge-answers-pt.txt
var judgeCorpusPT string

// Shape is one way a judge writes its answer.
type Shape struct {
	Name      string
	Weight    float64
	Tagged    bool // uses the request's answer tag
	Ambiguous bool // no verdict a person could read
	Template  string
}

// Shapes returns the judge answer shapes of the corpora, in file order,
// English then Portuguese; the error says where a corpus does not parse.
// The corpora are parsed once, at the first call (of Shapes or New), not
// when the package loads: a binary that never simulates never reads them.
func Shapes() ([]Shape, error) { return corpus() }

var corpus = sync.OnceValues(func() ([]Shape, error) {
	en, err := parseCorpus("judge-answers.txt", judgeCorpus)
	if err != nil {
		return nil, err
	}
	pt, err := parseCorpus("judge-answers-pt.txt", judgeCorpusPT)
	if err != nil {
		return nil, err
	}
	return append(en, pt...), nil
})

// parseCorpus reads the shapes of one corpus file, named name for errors.
func parseCorpus(name, text string) ([]Shape, error) {
	var out []Shape
	var body []string
	flush := func() {
		if len(out) > 0 {
			out[len(out)-1].Template = strings.TrimSpace(strings.Join(body, "\n"))
		}
		body = body[:0]
	}
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") && len(out) == 0 {
			continue
		}
		rest, ok := strings.CutPrefix(line, "== ")
		if !ok {
			body = append(body, line)
			continue
		}
		flush()
		f := strings.Fields(rest)
		if len(f) < 2 {
			return nil, fmt.Errorf("sim: corpus %s line %d: want \"== name weight [flags]\"", name, i+1)
		}
		w, err := strconv.ParseFloat(f[1], 64)
		if err != nil || w < 0 {
			return nil, fmt.Errorf("sim: corpus %s line %d: shape %s: bad weight %q", name, i+1, f[0], f[1])
		}
		s := Shape{Name: f[0], Weight: w}
		for _, flag := range f[2:] {
			s.Tagged = s.Tagged || flag == "tagged"
			s.Ambiguous = s.Ambiguous || flag == "ambiguous"
		}
		out = append(out, s)
	}
	flush()
	if len(out) == 0 {
		return nil, fmt.Errorf("sim: corpus %s has no shapes", name)
	}
	return out, nil
}
