// Package contract holds noesis's machine-readable contract: the AsyncAPI
// document (asyncapi.yaml) and the JSON Schemas of every payload and header
// set (schemas/), embedded so Go programs, noesis's tests among them, can
// validate messages against the very files other languages use.
package contract

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed asyncapi.yaml schemas/*.json
var Files embed.FS

// BaseURL is the $id prefix of every schema.
const BaseURL = "https://noesis.dev/schemas/"

// Schema names, one per file in schemas/.
const (
	Thought           = "thought"
	Envelope          = "envelope"
	Narrative         = "narrative"
	Verdict           = "verdict"
	Analysis          = "analysis"
	Transcript        = "transcript"
	OutputHeaders     = "output-headers"
	DeadLetterHeaders = "dead-letter-headers"
	DeadLetterNotice  = "dead-letter-notice"
	Review            = "review"
	ReviewDecision    = "review-decision"
)

// Schemas compiles every schema in schemas/, by name, with formats
// (date-time) asserted.
func Schemas() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	names, err := fs.Glob(Files, "schemas/*.json")
	if err != nil {
		return nil, err
	}
	for _, file := range names {
		b, err := Files.ReadFile(file)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if err := c.AddResource(BaseURL+path.Base(file), doc); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	out := make(map[string]*jsonschema.Schema, len(names))
	for _, file := range names {
		name := strings.TrimSuffix(path.Base(file), ".json")
		s, err := c.Compile(BaseURL + path.Base(file))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out[name] = s
	}
	return out, nil
}

// Validate checks one JSON document against the named schema.
func Validate(schemas map[string]*jsonschema.Schema, name string, data []byte) error {
	s, ok := schemas[name]
	if !ok {
		return fmt.Errorf("no schema %q", name)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: not JSON: %w", name, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Headers turns NATS headers into the JSON object the header schemas
// describe: each header's first value by its name.
func Headers(h map[string][]string) []byte {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		if len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	b, _ := json.Marshal(m) // a map of strings always encodes
	return b
}
