package answer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/noesis-dev/noesis/pipeline/internal/text"
)

// MaxSchemaReasoning is the longest reasoning, in characters, the verdict
// schema asks for (its maxLength): one paragraph. A longer one, from a
// provider that does not hold the answer to maxLength, is cut to it, not
// refused: its length says nothing about the verdict.
const MaxSchemaReasoning = 600

// schema is the verdict schema: the four fields of the tagged lines.
var schema = json.RawMessage(`{"type":"object","properties":{` +
	`"verdict":{"type":"string","enum":["PASS","REVIEW","FAIL","ABSTAIN"]},` +
	`"confidence":{"type":"number","minimum":0,"maximum":1},` +
	`"offense_level":{"type":"string","enum":["none","minor","major","capital"]},` +
	`"reasoning":{"type":"string","maxLength":600}},` +
	`"required":["verdict","confidence","offense_level","reasoning"],"additionalProperties":false}`)

// Schema returns the verdict schema, the JSON Schema a judge may be asked to
// answer in: verdict (PASS, REVIEW, FAIL or ABSTAIN), confidence (a number
// from 0 to 1), offense_level (none, minor, major or capital) and reasoning
// (one paragraph, at most MaxSchemaReasoning characters), all required,
// nothing else. ReadSchema reads an answer given in it. The schema is shared:
// it must not be changed.
func Schema() json.RawMessage { return schema }

// ReadSchema reads a judge's answer given in the verdict Schema, strictly:
// the whole answer (thinking removed) must be one JSON object with exactly
// the schema's four fields, each once, the verdict and offense_level
// spelled as the schema's enums, the confidence a number from 0 to 1, and
// nothing before or after it. The reasoning is trimmed and cut to
// MaxSchemaReasoning characters. An object that only repeats the thought
// under judgement (quote) is not the judge's. Any other answer is an error
// wrapping ErrUnparseable: it may be text from a provider that ignored the
// schema, for Read to read.
func ReadSchema(answer string, quote Quote) (JudgeAnswer, error) {
	return readSchemaWith(decodeSchema, answer, quote)
}

// readSchemaWith is ReadSchema reading the object with decode (the tests'
// oracle reads it with decodeTokens alone).
func readSchemaWith(decode func(string) (JudgeAnswer, error), answer string, quote Quote) (JudgeAnswer, error) {
	answer = strings.TrimSpace(answer)
	if !strings.HasPrefix(answer, "{") || !strings.HasSuffix(answer, "}") {
		return JudgeAnswer{}, fmt.Errorf("%w: not one JSON object", ErrUnparseable)
	}
	a, err := decode(answer)
	if err != nil {
		return JudgeAnswer{}, fmt.Errorf("%w: %w", ErrUnparseable, err)
	}
	if repeatsQuote(answer, string(quote)) {
		return JudgeAnswer{}, fmt.Errorf("%w: the answer only repeats the thought under judgement", ErrUnparseable)
	}
	return a, nil
}

// decodeSchema reads the object: in one pass over its bytes when it is
// the schema's plainly (scanSchema, the answer of every schema-taking
// target), else token by token (decodeTokens), which also says why an
// object is refused.
func decodeSchema(object string) (JudgeAnswer, error) {
	if a, ok := scanSchema(object); ok {
		return a, nil
	}
	return decodeTokens(object)
}

// decodeTokens decodes the object token by token, so that a field
// given twice or a field the schema does not have is refused rather than
// silently kept or dropped.
func decodeTokens(object string) (JudgeAnswer, error) {
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
		if err := setSchemaField(&a, key, v); err != nil {
			return JudgeAnswer{}, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return JudgeAnswer{}, fmt.Errorf("broken JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return JudgeAnswer{}, errors.New("more than one JSON value")
	}
	for _, k := range schemaFields {
		if !seen[k] {
			return JudgeAnswer{}, fmt.Errorf("field %q missing", k)
		}
	}
	return a, nil
}

// setSchemaField sets a's field key of the verdict schema from its JSON value.
func setSchemaField(a *JudgeAnswer, key string, v any) (err error) {
	s, isString := v.(string)
	switch key {
	case "verdict":
		a.Verdict, err = enumValue(key, v, VotePass, VoteReview, VoteFail, VoteAbstain)
		return err
	case "confidence":
		n, ok := v.(json.Number)
		f, err := n.Float64()
		if !ok || err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return fmt.Errorf("confidence %s is not a number from 0 to 1", jsonText(v))
		}
		a.Confidence = f
		return nil
	case "offense_level":
		a.Offense, err = enumValue(key, v, OffenseNone, OffenseMinor, OffenseMajor, OffenseCapital)
		return err
	case "reasoning":
		if !isString {
			return fmt.Errorf("reasoning %s is not a string", jsonText(v))
		}
		a.Reasoning = cutRunes(strings.TrimSpace(s), MaxSchemaReasoning)
		return nil
	}
	return fmt.Errorf("field %q is not in the schema", key)
}

// enumValue reads v, the value of the schema's field key, as one of the
// field's enum values; it is an error naming them when it is none.
func enumValue[T ~string](key string, v any, values ...T) (T, error) {
	if s, _ := v.(string); slices.Contains(values, T(s)) {
		return T(s), nil
	}
	names := make([]string, len(values))
	for i, e := range values {
		names[i] = string(e)
	}
	return "", fmt.Errorf("%s %s is none of %s", key, jsonText(v), strings.Join(names, ", "))
}

// jsonText shows a decoded JSON value in an error, at most 40 bytes of it.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return text.Clip(string(b), 40)
}

// cutRunes cuts s to at most n characters.
func cutRunes(s string, n int) string {
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

// repeatsQuote reports whether the answer's words, in order, stand in the
// quoted thought: a JSON verdict the agent wrote into its own thought and
// the model gave back. Only a thought that names a verdict field is
// compared, so the common case costs one scan of the thought.
func repeatsQuote(answer, quote string) bool {
	if quote == "" || !containsFoldASCII(quote, "verdict") {
		return false
	}
	return strings.Contains(normalise(quote), normalise(answer))
}

// containsFoldASCII reports whether s holds sub (lower-case ASCII) in any case.
func containsFoldASCII(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) && (s[i+j]|0x20) == sub[j] {
			j++
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}
