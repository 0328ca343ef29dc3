package registry

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/workloads/trace"
)

// This file carries knobs between a run and a trace: record writes the
// knobs that shaped a recorded run into the trace (TraceKnobs), and a
// replay runs the trace's cells with them (ApplyTraceKnobs), unless the
// user set a key, so that a recording replays as it ran.

// KnobValues returns every knob under prefix ("platform.", "" for all)
// with its value as config.yaml would spell it, sorted by key.
func (c *Config) KnobValues(prefix string) [][2]string {
	var out [][2]string
	eachKnob(reflect.ValueOf(c).Elem(), func(key string, v reflect.Value) {
		if strings.HasPrefix(key, prefix) {
			out = append(out, [2]string{key, knobText(v)})
		}
	})
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// knobText spells a knob's value as a config file or --set would.
func knobText(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = knobText(v.Index(i))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// TraceKnobs returns the knobs a recording of cell c writes into its
// trace: every platform knob of the config the cell ran with (the
// scenario's: background pressure, RAM, cache lines), and the allocator
// knobs its scenario sets.
func (b *Builder) TraceKnobs(c matrix.Cell) [][2]string {
	cfg := b.cfg.ForScenario(c.Scenario)
	out := cfg.KnobValues("platform.")
	if sc, ok := b.cfg.Scenario[c.Scenario]; ok && len(sc.Allocator) > 0 {
		set := map[string]bool{}
		for _, kv := range sc.Settings() {
			k, _, _ := strings.Cut(kv, "=")
			set[k] = true
		}
		for _, kv := range cfg.KnobValues("allocator.") {
			if set[kv[0]] {
				out = append(out, kv)
			}
		}
	}
	return out
}

// ApplyTraceKnobs gives each trace the run replays its own config: the
// run's, with the knobs the trace carries (Knob) on top, except a key the
// user set (in a config file, the environment, a flag or --set), which
// wins. It returns a note per knob that changes the run's value or that
// the user's setting overrides. A knob that names no key, or whose value
// does not fit it, is an error naming the file, line and key.
func (c *Config) ApplyTraceKnobs() ([]string, error) {
	kinds := KnobKinds()
	var notes []string
	for _, w := range c.Workloads {
		path, ok := strings.CutPrefix(w, TracePrefix)
		if !ok {
			continue
		}
		knobs, err := trace.ReadKnobs(path)
		if err != nil || len(knobs) == 0 {
			if err != nil {
				return nil, UsageError{err}
			}
			continue
		}
		run := map[string]string{}
		for _, kv := range c.KnobValues("") {
			run[kv[0]] = kv[1]
		}
		settings := maps.Clone(c.settings)
		var used []string
		for _, k := range knobs {
			key := strings.ToLower(k.Key)
			kind, ok := kinds[key]
			if !ok {
				kind, ok = kinds[kindKey(key)]
			}
			if !ok || !strings.HasPrefix(key, "platform.") && !strings.HasPrefix(key, "allocator.") {
				return nil, UsageError{fmt.Errorf("%s:%d: knob %s: no platform or allocator knob of that name (see config.yaml)", path, k.Line, k.Key)}
			}
			if err := CheckNumber(key, k.Value, kind); err != nil {
				return nil, UsageError{fmt.Errorf("%s:%d: knob %s: %v", path, k.Line, k.Key, err)}
			}
			if where, set := c.explicit[key]; set {
				if run[key] != k.Value {
					notes = append(notes, fmt.Sprintf("%s: knob %s=%s not used: %s sets %s", path, key, k.Value, where, run[key]))
				}
				continue
			}
			if run[key] != k.Value {
				used = append(used, key+"="+k.Value)
			}
			setPath(settings, key, k.Value)
		}
		if len(used) > 0 {
			notes = append(notes, fmt.Sprintf("%s: replayed with the trace's knobs: %s", path, strings.Join(used, ", ")))
		}
		var d Config
		if err := decode(settings, &d); err != nil {
			return nil, UsageError{fmt.Errorf("%s: knobs: %v", path, err)}
		}
		d.settings, d.explicit = settings, c.explicit
		if err := d.checkKnobs(); err != nil {
			return nil, UsageError{fmt.Errorf("%s: knobs: %v", path, err)}
		}
		c.SetScenarioConfig(w, &d)
	}
	return notes, nil
}

// setPath sets the leaf key (a.b.c) in nested settings (mergeInto: the
// maps on the way are copied, the settings they came from left as they
// were).
func setPath(m map[string]any, key string, value any) {
	parts := strings.Split(key, ".")
	over := value
	for i := len(parts) - 1; i > 0; i-- {
		over = map[string]any{parts[i]: over}
	}
	mergeInto(m, map[string]any{parts[0]: over})
}

// With returns the config with knobs set (key, value as config.yaml
// spells them) as if the user had set them, scenarios' configs included.
func (c *Config) With(kvs ...[2]string) (*Config, error) {
	settings := maps.Clone(c.settings)
	explicit := maps.Clone(c.explicit)
	if explicit == nil {
		explicit = map[string]string{}
	}
	for _, kv := range kvs {
		setPath(settings, kv[0], kv[1])
		explicit[kv[0]] = "dmabench"
	}
	d, err := Decode(settings)
	if err != nil {
		return nil, err
	}
	d.explicit = explicit
	return d, nil
}
