package answer

import (
	"encoding/json"
	"strconv"
	"strings"
)

// scanJSON finds every JSON object in text that names a verdict; an object
// that holds tag (lower-case) is tagged.
func scanJSON(text, tag string) []item {
	var items []item
	group := 1
	for i := 0; i < len(text); i++ {
		if text[i] != '{' {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(text[i:]))
		dec.UseNumber()
		var obj map[string]any
		if dec.Decode(&obj) != nil {
			continue
		}
		end := i + int(dec.InputOffset())
		span := text[i:end]
		fields := flatten(obj)
		if _, ok := fields[fieldVerdict]; !ok {
			continue
		}
		tagged := tag != "" && strings.Contains(asciiLower(span), tag)
		for _, k := range []fieldKind{fieldVerdict, fieldConfidence, fieldOffense, fieldReasoning} {
			if v, ok := fields[k]; ok {
				items = append(items, item{kind: k, value: v, span: span, pos: i, group: group, tagged: tagged})
			}
		}
		group++
		i = end - 1
	}
	return items
}

// flatten reads an object's fields by their usual names, one level of
// nesting deep ({"judgement": {"verdict": ...}}).
func flatten(obj map[string]any) map[fieldKind]string {
	out := map[fieldKind]string{}
	for k, v := range obj {
		if inner, ok := v.(map[string]any); ok {
			for ik, iv := range flatten(inner) {
				if _, seen := out[ik]; !seen {
					out[ik] = iv
				}
			}
			continue
		}
		kind, ok := fieldOf(k)
		if !ok {
			continue
		}
		switch x := v.(type) {
		case string:
			out[kind] = x
		case json.Number:
			// As written, but never with an exponent: 1e-1 is 0.1.
			out[kind] = x.String()
			if f, err := strconv.ParseFloat(x.String(), 64); err == nil {
				out[kind] = strconv.FormatFloat(f, 'f', -1, 64)
			}
		case bool, nil:
		default:
			b, _ := json.Marshal(x)
			out[kind] = string(b)
		}
	}
	return out
}
