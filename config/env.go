package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Names lists every setting's environment variable, nested ones with their
// prefixes (NOESIS_FAST_CONCURRENCY), in the order of the struct.
func Names() []string {
	var out []string
	eachSetting(func(_ reflect.StructField, name string) { out = append(out, name) })
	return out
}

// eachSetting calls fn with every setting's field and its variable, nested
// structs walked with their envPrefix.
func eachSetting(fn func(f reflect.StructField, name string)) {
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				walk(f.Type, prefix+f.Tag.Get("envPrefix"))
				continue
			}
			if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" && name != "-" {
				fn(f, prefix+name)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
}

// variableOf finds the variable behind a parse error, which names only the
// struct field: of the variables that field is read from (a nested field has
// one per prefix), the one whose value does not parse as the field's type.
func variableOf(pe env.ParseError, environ map[string]string) string {
	var candidates []string
	eachSetting(func(f reflect.StructField, name string) {
		if f.Name == pe.Name {
			candidates = append(candidates, name)
		}
	})
	for _, name := range candidates {
		if v, set := environ[name]; set && !parses(pe.Type, v) {
			return name
		}
	}
	if len(candidates) > 0 {
		return candidates[0]
	}
	return pe.Name
}

// parses reports whether v reads as a value of type t.
func parses(t reflect.Type, v string) bool {
	var err error
	switch {
	case t == reflect.TypeFor[ByteSize]():
		err = new(ByteSize).UnmarshalText([]byte(v))
	case t == reflect.TypeFor[time.Duration]():
		_, err = time.ParseDuration(v)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		_, err = strconv.ParseInt(v, 10, 64)
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		_, err = strconv.ParseUint(v, 10, 64)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		_, err = strconv.ParseFloat(v, 64)
	case t.Kind() == reflect.Bool:
		_, err = strconv.ParseBool(v)
	}
	return err == nil
}

// describeEnvError rewrites the parser's errors to name the variable and what it expects.
func describeEnvError(err error, environ map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: %w", err)
	}
	var msgs []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			name := variableOf(pe, environ)
			msgs = append(msgs, fmt.Sprintf("%s: want %s, got %q", name, expects(pe.Type), environ[name]))
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return fmt.Errorf("config: %s", strings.Join(msgs, "; "))
}

func expects(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration such as 500ms, 30s or 5m"
	case t == reflect.TypeFor[ByteSize]():
		return "a size such as 512MiB or 1GiB"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return "a whole number"
	case t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	}
	return "a " + t.String()
}
