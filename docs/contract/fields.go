package contract

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Mismatches compares the JSON Schema named schema (schemas/<schema>.json)
// with the Go struct typ that writes its payload, field by field: every
// field a property, every property a field, and a field required exactly
// when its json tag does not say omitempty. It returns what differs, one
// line each; none when they agree.
func Mismatches(schema string, typ reflect.Type) ([]string, error) {
	b, err := Files.ReadFile("schemas/" + schema + ".json")
	if err != nil {
		return nil, err
	}
	var s struct {
		Required   []string
		Properties map[string]any
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", schema, err)
	}
	var out []string
	fields := map[string]bool{}
	for f := range typ.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields[name] = true
		if _, ok := s.Properties[name]; !ok {
			out = append(out, fmt.Sprintf("%s: field %q has no property", schema, name))
		}
		required, omitempty := slices.Contains(s.Required, name), strings.Contains(opts, "omitempty")
		if required == omitempty {
			out = append(out, fmt.Sprintf("%s: %q required is %v, omitempty is %v", schema, name, required, omitempty))
		}
	}
	for p := range s.Properties {
		if !fields[p] {
			out = append(out, fmt.Sprintf("%s: property %q has no field", schema, p))
		}
	}
	slices.Sort(out)
	return out, nil
}
