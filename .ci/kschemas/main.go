// Command kschemas writes the JSON Schemas kubeconform validates Kubernetes
// manifests with, offline: from the OpenAPI (swagger) document of a
// Kubernetes release and from CustomResourceDefinition files. The schemas are
// strict, as kubeconform's own -strict ones: an object with properties allows
// no other fields; int-or-string and quantities take both shapes; a field that
// is not required may be null.
//
//	go run . -swagger .../api/openapi-spec/swagger.json -out DIR crd.yaml...
//
// Files are named as kubeconform's -schema-location template
// 'DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json' wants: deployment-apps-v1.json,
// secret-v1.json, scaledobject-keda-v1alpha1.json.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	swagger := flag.String("swagger", "", "the Kubernetes swagger.json (k8s.io/kubernetes/api/openapi-spec/swagger.json)")
	out := flag.String("out", "", "the directory to write the schemas to")
	flag.Parse()
	if *swagger == "" || *out == "" {
		log.Fatal("usage: kschemas -swagger swagger.json -out DIR [crd.yaml ...]")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	n, err := fromSwagger(*swagger, *out)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range flag.Args() {
		m, err := fromCRDs(f, *out)
		if err != nil {
			log.Fatalf("%s: %v", f, err)
		}
		n += m
	}
	fmt.Printf("kschemas: %d schemas in %s\n", n, *out)
}

type object = map[string]any

func fromSwagger(path, out string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Definitions map[string]object `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	defs := doc.Definitions
	// The two shapes JSON Schema cannot say with one type.
	for name, d := range defs {
		switch {
		case strings.HasSuffix(name, ".util.intstr.IntOrString"):
			defs[name] = object{"oneOf": []any{object{"type": "string"}, object{"type": "integer"}}}
		case strings.HasSuffix(name, ".api.resource.Quantity"):
			defs[name] = object{"oneOf": []any{object{"type": "string"}, object{"type": "number"}}}
		default:
			strict(d)
		}
	}
	n := 0
	for name, d := range defs {
		gvks, _ := d["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk := g.(object)
			group, version, kind := gvk["group"].(string), gvk["version"].(string), gvk["kind"].(string)
			reach := map[string]bool{}
			refs(d, defs, reach)
			delete(reach, name)
			schema := copyOf(d)
			if len(reach) > 0 {
				sub := object{}
				for r := range reach {
					sub[r] = defs[r]
				}
				schema["definitions"] = sub
			}
			apiVersion := version
			if group != "" {
				apiVersion = group + "/" + version
			}
			pin(schema, apiVersion, kind)
			if err := write(out, kind, apiVersion, schema); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func fromCRDs(path, out string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, part := range bytes.Split(b, []byte("\n---")) {
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Schema struct {
						OpenAPIV3Schema object `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(part, &crd); err != nil {
			return n, err
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			s := v.Schema.OpenAPIV3Schema
			if s == nil {
				continue
			}
			strict(s)
			apiVersion := crd.Spec.Group + "/" + v.Name
			pin(s, apiVersion, crd.Spec.Names.Kind)
			if err := write(out, crd.Spec.Names.Kind, apiVersion, s); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// strict closes every object that lists its properties, lets fields that are
// not required be null, and turns int-or-string into both shapes, all the
// way down.
func strict(s object) {
	if s["x-kubernetes-int-or-string"] == true {
		delete(s, "type")
		s["oneOf"] = []any{object{"type": "string"}, object{"type": "integer"}}
	}
	if props, ok := s["properties"].(object); ok {
		if _, set := s["additionalProperties"]; !set && s["x-kubernetes-preserve-unknown-fields"] != true {
			s["additionalProperties"] = false
		}
		required := map[string]bool{}
		for _, r := range asSlice(s["required"]) {
			required[r.(string)] = true
		}
		for k, p := range props {
			po, ok := p.(object)
			if !ok {
				continue
			}
			if t, ok := po["type"].(string); ok && !required[k] {
				po["type"] = []any{t, "null"}
			}
		}
	}
	// Down into subschemas only: a property may itself be named "properties" or "type".
	for _, p := range asObject(s["properties"]) {
		if o, ok := p.(object); ok {
			strict(o)
		}
	}
	for _, k := range []string{"items", "additionalProperties", "not"} {
		if o, ok := s[k].(object); ok {
			strict(o)
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		for _, e := range asSlice(s[k]) {
			if o, ok := e.(object); ok {
				strict(o)
			}
		}
	}
}

// pin makes apiVersion and kind exact.
func pin(s object, apiVersion, kind string) {
	props, ok := s["properties"].(object)
	if !ok {
		return
	}
	props["apiVersion"] = object{"type": "string", "enum": []any{apiVersion}}
	props["kind"] = object{"type": "string", "enum": []any{kind}}
}

// refs collects the definitions s refers to, transitively.
func refs(v any, defs map[string]object, seen map[string]bool) {
	switch x := v.(type) {
	case object:
		if r, ok := x["$ref"].(string); ok {
			name := strings.TrimPrefix(r, "#/definitions/")
			if !seen[name] {
				seen[name] = true
				refs(defs[name], defs, seen)
			}
		}
		for _, e := range x {
			refs(e, defs, seen)
		}
	case []any:
		for _, e := range x {
			refs(e, defs, seen)
		}
	}
}

func write(dir, kind, apiVersion string, schema object) error {
	schema["$schema"] = "http://json-schema.org/draft-07/schema#"
	b, err := json.Marshal(schema)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, fileName(kind, apiVersion)), b, 0o644)
}

// fileName is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json.
func fileName(kind, apiVersion string) string {
	group, version, found := strings.Cut(apiVersion, "/")
	suffix := "-" + strings.ToLower(strings.Split(group, ".")[0])
	if found {
		suffix += "-" + strings.ToLower(version)
	}
	return strings.ToLower(kind) + suffix + ".json"
}

func copyOf(o object) object {
	c := make(object, len(o)+1)
	for k, v := range o {
		c[k] = v
	}
	return c
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func asObject(v any) object { o, _ := v.(object); return o }
