package registry

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
)

// Knob bounds. Every numeric knob is checked against one of these before
// a run starts, by the suffix of its key, so that no value overflows the
// arithmetic of modeled time or sizes; a model's own Validate bounds many
// knobs more tightly. docs/running.md lists them.
var knobBounds = []struct {
	suffix string
	max    int64
	what   string
}{
	{"_ns", 10_000_000_000, "10 s in ns"},
	{"_us", 3_600_000_000, "1 hour in µs"},
	{"_ms", 3_600_000, "1 hour in ms"},
	{"_mib_per_s", 1 << 20, "1 TiB/s"},
	{"_mib", 1 << 20, "1 TiB in MiB"},
	{"_mbps", 1_000_000, "1 Tbit/s"},
	{"_bytes", 1 << 30, "1 GiB"},
	{"_size", 1 << 30, "1 GiB"},
	{"events", MaxEvents, "10^10 events a cell"},
	{"seeds", MaxSeeds, "10^4 seeds"},
	{"", math.MaxInt32, "2^31-1"},
}

// Bounds of a run as a whole: a run past them is refused before it
// starts, since it could not end in any useful time or memory.
const (
	MaxEvents = 10_000_000_000
	MaxSeeds  = 10_000
	MaxCells  = 1_000_000
)

// KnobError is a knob whose value is out of bounds or not a number.
type KnobError struct {
	Key, Msg string
}

func (e *KnobError) Error() string { return e.Key + ": " + e.Msg }

// knobBound returns the largest value key may take, and what it is.
func knobBound(key string) (int64, string) {
	leaf := key[strings.LastIndexByte(key, '.')+1:]
	for _, b := range knobBounds {
		if strings.HasSuffix(leaf, b.suffix) {
			return b.max, b.what
		}
	}
	return math.MaxInt32, "2^31-1"
}

// KnobKinds returns every knob's key (dotted, as in config.yaml) and its
// kind; a map's keys are "*" (min_nr_by_pool.*).
func KnobKinds() map[string]reflect.Kind {
	out := map[string]reflect.Kind{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		switch t.Kind() {
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
				if tag == "" || tag == "-" || !f.IsExported() {
					continue
				}
				walk(join(prefix, tag), f.Type)
			}
		case reflect.Map:
			if prefix != "scenario" {
				walk(join(prefix, "*"), t.Elem())
			}
		default:
			out[prefix] = t.Kind()
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return out
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// checkKnobs checks every numeric knob of c: floats are finite, and every
// number lies within its bound (knobBounds).
func (c *Config) checkKnobs() error {
	var err error
	eachKnob(reflect.ValueOf(c).Elem(), func(key string, v reflect.Value) {
		if err != nil {
			return
		}
		switch v.Kind() {
		case reflect.Float32, reflect.Float64:
			if x := v.Float(); math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 1e12 {
				err = &KnobError{key, fmt.Sprintf("%v: want a finite number of magnitude at most 10^12", x)}
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			max, what := knobBound(key)
			if x := v.Int(); x > max || x < -max {
				err = &KnobError{key, fmt.Sprintf("%d: out of range (at most %d, %s)", x, max, what)}
			}
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			max, what := knobBound(key)
			if x := v.Uint(); x > uint64(max) {
				err = &KnobError{key, fmt.Sprintf("%d: out of range (at most %d, %s)", x, max, what)}
			}
		}
	})
	return err
}

// eachKnob calls fn with every knob of the config value v (a Config) and
// its dotted key, as config.yaml spells it: struct fields by their
// mapstructure tags (the scenarios left out), map entries by their keys
// in sorted order, and the leaves (numbers, strings, lists).
func eachKnob(v reflect.Value, fn func(key string, v reflect.Value)) {
	var walk func(key string, v reflect.Value)
	walk = func(key string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
				if tag == "" || tag == "-" || !f.IsExported() || key == "" && tag == "scenario" {
					continue
				}
				walk(join(key, tag), v.Field(i))
			}
		case reflect.Map:
			ks := v.MapKeys()
			slices.SortFunc(ks, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
			for _, k := range ks {
				walk(join(key, fmt.Sprint(k)), v.MapIndex(k))
			}
		default:
			fn(key, v)
		}
	}
	walk("", v)
}
