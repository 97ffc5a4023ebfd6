package answer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/noesis-dev/noesis/pipeline/internal/text"
	"strings"
)

// This file keeps ReadSchema as it was before scanSchema, token by token
// for every answer, as the oracle the differential tests hold the reader
// to (schema_diff_test.go): the two must accept the same answers, read
// them the same and refuse the others with the same errors. Do not change
// it to follow the reader: it is the behaviour the reader must keep.

// ReadSchemaBefore is the oracle, for the external tests.
var ReadSchemaBefore = readSchemaBefore

// readSchemaBefore is ReadSchema as it was.
func readSchemaBefore(answer string, quote Quote) (JudgeAnswer, error) {
	answer = strings.TrimSpace(answer)
	if !strings.HasPrefix(answer, "{") || !strings.HasSuffix(answer, "}") {
		return JudgeAnswer{}, fmt.Errorf("%w: not one JSON object", ErrUnparseable)
	}
	a, err := decodeSchemaBefore(answer)
	if err != nil {
		return JudgeAnswer{}, fmt.Errorf("%w: %w", ErrUnparseable, err)
	}
	if repeatsQuote(answer, string(quote)) {
		return JudgeAnswer{}, fmt.Errorf("%w: the answer only repeats the thought under judgement", ErrUnparseable)
	}
	return a, nil
}

// decodeSchemaBefore decodes the object token by token, so that a field
// given twice or a field the schema does not have is refused rather than
// silently kept or dropped.
func decodeSchemaBefore(object string) (JudgeAnswer, error) {
	dec := json.NewDecoder(strings.NewReader(object))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return JudgeAnswer{}, errors.New("not a JSON object")
	}
	var a JudgeAnswer
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return JudgeAnswer{}, fmt.Errorf("broken JSON: %w", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return JudgeAnswer{}, fmt.Errorf("field %q given twice", key)
		}
		seen[key] = true
		var v any
		if err := dec.Decode(&v); err != nil {
			return JudgeAnswer{}, fmt.Errorf("broken JSON: %w", err)
		}
		if err := setSchemaFieldBefore(&a, key, v); err != nil {
			return JudgeAnswer{}, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return JudgeAnswer{}, fmt.Errorf("broken JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return JudgeAnswer{}, errors.New("more than one JSON value")
	}
	for _, k := range []string{"verdict", "confidence", "offense_level", "reasoning"} {
		if !seen[k] {
			return JudgeAnswer{}, fmt.Errorf("field %q missing", k)
		}
	}
	return a, nil
}

// setSchemaFieldBefore sets a's field key of the verdict schema from its JSON value.
func setSchemaFieldBefore(a *JudgeAnswer, key string, v any) (err error) {
	s, isString := v.(string)
	switch key {
	case "verdict":
		a.Verdict, err = enumValueBefore(key, v, VotePass, VoteReview, VoteFail, VoteAbstain)
		return err
	case "confidence":
		n, ok := v.(json.Number)
		f, err := n.Float64()
		if !ok || err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return fmt.Errorf("confidence %s is not a number from 0 to 1", jsonTextBefore(v))
		}
		a.Confidence = f
		return nil
	case "offense_level":
		a.Offense, err = enumValueBefore(key, v, OffenseNone, OffenseMinor, OffenseMajor, OffenseCapital)
		return err
	case "reasoning":
		if !isString {
			return fmt.Errorf("reasoning %s is not a string", jsonTextBefore(v))
		}
		a.Reasoning = cutRunesBefore(strings.TrimSpace(s), MaxSchemaReasoning)
		return nil
	}
	return fmt.Errorf("field %q is not in the schema", key)
}

// enumValueBefore reads v, the value of the schema's field key, as one of the
// field's enum values; it is an error naming them when it is none.
func enumValueBefore[T ~string](key string, v any, values ...T) (T, error) {
	if s, _ := v.(string); slices.Contains(values, T(s)) {
		return T(s), nil
	}
	names := make([]string, len(values))
	for i, e := range values {
		names[i] = string(e)
	}
	return "", fmt.Errorf("%s %s is none of %s", key, jsonTextBefore(v), strings.Join(names, ", "))
}

// jsonTextBefore shows a decoded JSON value in an error, at most 40 bytes of it.
func jsonTextBefore(v any) string {
	b, _ := json.Marshal(v)
	return text.Clip(string(b), 40)
}

// cutRunesBefore cuts s to at most n characters.
func cutRunesBefore(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
