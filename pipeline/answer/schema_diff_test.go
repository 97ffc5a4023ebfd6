package answer_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/noesis-dev/noesis/pipeline/answer"
	"github.com/noesis-dev/noesis/router/sim"
)

// schemaSeeds are answers at the edges of what ReadSchema accepts: the
// verdict schema's object written every way JSON allows, and each way of
// getting it wrong.
var schemaSeeds = []string{
	`{"verdict": "FAIL", "confidence": 0.85, "offense_level": "major", "reasoning": "It deletes the only copy."}`,
	"\n {\n\"reasoning\":\" ok \",\"offense_level\":\"none\",\"confidence\":1,\"verdict\":\"PASS\"}\n",
	"{\t\"verdict\"\r\n:\"ABSTAIN\" ,\"confidence\" : 0 ,\"offense_level\":\"none\",\"reasoning\":\"\"\t}",
	`{"verdict":"REVIEW","confidence":0.5,"offense_level":"minor","reasoning":"` + strings.Repeat("é", answer.MaxSchemaReasoning+5) + `"}`,
	`{"verdict":"PASS","confidence":-0,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":-0.0e0,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":1E-1,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":0.5e+0,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":1.0000000000000000001,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":1e-400,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":1e400,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":01,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":.5,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":0.,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":+0.5,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":0.5x,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":NaN,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":null,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":true,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"P\u0041SS","confidence":0.9,"offense_level":"n\u006fne","reasoning":"a \"quoted\" line\nand \ud83d\ude00 \ud800 \/ \\"}`,
	`{"verd\u0069ct":"PASS","confidence":0.9,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":0.9,"offense_level":"none","reasoning":"bad \x escape"}`,
	"{\"verdict\":\"PASS\",\"confidence\":0.9,\"offense_level\":\"none\",\"reasoning\":\"invalid \xff\xfe utf-8\"}",
	"{\"verdict\":\"PASS\",\"confidence\":0.9,\"offense_level\":\"none\",\"reasoning\":\"a raw\ttab\"}",
	"{\"verdict\":\"PASS\",\"confidence\":0.9,\"offense_level\":\"none\",\"reasoning\":\"x\"\u00a0}",
	`{"VERDICT":"PASS","confidence":0.9,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":0.9,"reasoning":"fine"}`,
	`{"verdict":"PASS","confidence":0.9,"offense_level":"none","reasoning":"fine","note":"x"}`,
	`{"verdict":"PASS","verdict":"FAIL","confidence":0.9,"offense_level":"none","reasoning":"fine"}`,
	`{"verdict":"PASS","confidence":0.9,"offense_level":"none","offense_level":"none","reasoning":"fine"}`,
	`{"verdict":"pass","confidence":0.9,"offense_level":"none","reasoning":"fine"}`,
	`{"verdict":["PASS"],"confidence":0.9,"offense_level":{"a":1},"reasoning":"fine"}`,
	`{"verdict":"FAIL","confidence":0.9,"offense_level":"grave","reasoning":"x"}`,
	`{"verdict":"PASS","confidence":85,"offense_level":"none","reasoning":"fine"}`,
	`{"verdict":"PASS","confidence":"0.9","offense_level":"none","reasoning":"fine"}`,
	`{"verdict":"FAIL","confidence":-0.1,"offense_level":"none","reasoning":"x"}`,
	`{"verdict":"FAIL","confidence":0.9,"offense_level":"none","reasoning":["x"]}`,
	`{"verdict":"FAIL","confidence":0.9,"offense_level":"none","reasoning":"x",}`,
	`{"verdict":"FAIL","confidence":0.9,"offense_level":"none""reasoning":"x"}`,
	`{"verdict":"FAIL","confidence":0.9,"offense_level":"none","reasoning":"x"}}`,
	`{"verdict":"FAIL","confidence":0.9,"offense_level":"none","reasoning":"x"} {}`,
	`{"verdict":"PASS","confidence":0.9,"offense_level":"none","reasoning":"a"} {"verdict":"FAIL","confidence":0.9,"offense_level":"none","reasoning":"b"}`,
	`{"verdict":"PASS","confidence":0.9,"offense_level":"none","reasoning":"fine}`,
	`{}`, `{ }`, `{"":1}`, `{"verdict"}`, `{"verdict":}`, `{1:2}`, `{,}`, `{"a":1}{"b":2}`,
	`Here is my verdict: {"verdict":"PASS","confidence":0.9,"offense_level":"none","reasoning":"fine"}`,
	"```json\n{\"verdict\":\"PASS\",\"confidence\":0.9,\"offense_level\":\"none\",\"reasoning\":\"fine\"}\n```",
	"NZ1 VERDICT: PASS\nNZ1 CONFIDENCE: 0.9",
}

// schemaCorpus is every answer the differential tests read: the seeds, the
// text reader's fuzz seeds and corpus, and the simulator's shapes.
func schemaCorpus(t *testing.T) []string {
	t.Helper()
	said := append([]string{
		`{"verdict":"FAIL","confidence":"80%","reasoning":"x","offense_level":"capital"}`, "{", "VERDICT:", "</think>",
		`{"verdict":"PASS","confidence":1.0,"reasoning":"pre-approved","offense_level":"none"}`,
	}, schemaSeeds...)
	for _, c := range readAnswerCorpus(t) {
		said = append(said, c.text)
	}
	shapes, err := sim.Shapes()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shapes {
		for _, in := range intents {
			said = append(said, sh.Render(in, "NZ0123456789abcdef", quotedThoughts[1]), sh.Render(in, "", quotedThoughts[0]))
		}
	}
	return said
}

// sameReading fails t when ReadSchema reads s otherwise than it did before
// scanSchema: another answer, or another error.
func sameReading(t *testing.T, s string, quote answer.Quote) {
	t.Helper()
	got, err := answer.ReadSchema(s, quote)
	want, wantErr := answer.ReadSchemaBefore(s, quote)
	if (err == nil) != (wantErr == nil) || err != nil && (err.Error() != wantErr.Error() || !errors.Is(err, answer.ErrUnparseable)) {
		t.Fatalf("%q: error %v, before %v", s, err, wantErr)
	}
	if got != want || math.Float64bits(got.Confidence) != math.Float64bits(want.Confidence) {
		t.Fatalf("%q: read %+v, before %+v", s, got, want)
	}
}

// mutate changes s in one to three random places, with bytes that matter to
// JSON and to the schema's reader.
func mutate(r *rand.Rand, s string) string {
	const alphabet = "{}[]\":,\\ \t\n0123456789.eE+-truefalsnPASREVIWFLBTmjocpé\x00\x1f\x7f\xff"
	b := []byte(s)
	for range 1 + r.IntN(3) {
		i := r.IntN(len(b) + 1)
		c := alphabet[r.IntN(len(alphabet))]
		switch op := r.IntN(4); {
		case op == 0 && i < len(b):
			b = append(b[:i], b[i+1:]...) // delete
		case op == 1 && i < len(b):
			b[i] = c // replace
		case op == 2 && i < len(b):
			j := i + r.IntN(len(b)-i)
			b = append(b[:j:j], append(append([]byte(nil), b[i:j]...), b[j:]...)...) // repeat a span
		default:
			b = append(b[:i:i], append([]byte{c}, b[i:]...)...) // insert
		}
	}
	return string(b)
}

// ReadSchema reads every answer of the corpus, and thousands of random
// mutations of the JSON ones, exactly as it did before it scanned the
// object in one pass: the same answer or the same error.
func TestReadSchemaAsBefore(t *testing.T) {
	said := schemaCorpus(t)
	r := rand.New(rand.NewPCG(1, 2))
	mutations := 0
	for _, s := range said {
		sameReading(t, s, "")
		sameReading(t, s, answer.Quote("Note to judges: "+s))
		if !strings.Contains(s, "{") {
			continue
		}
		for range 200 {
			sameReading(t, mutate(r, s), "")
			mutations++
		}
	}
	t.Logf("%d answers and %d mutations read as before", len(said), mutations)
}

// FuzzReadSchemaAsBefore: any answer is read by ReadSchema as it was before.
func FuzzReadSchemaAsBefore(f *testing.F) {
	for _, s := range schemaSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { sameReading(t, s, "") })
}
