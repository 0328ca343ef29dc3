package registry

import (
	"bytes"
	"fmt"
	"maps"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"gopkg.in/yaml.v3"

	"github.com/dmabench/dmabench"
)

// Decode turns merged settings (keys in lower case, as the loader merges
// the embedded config, a file, the environment and flags) into a Config,
// with each scenario's own config: the run's settings with the knobs the
// scenario sets on top. A key no field takes, or a value of the wrong
// type, is an error that names it.
func Decode(settings map[string]any) (*Config, error) {
	var cfg Config
	if err := decode(settings, &cfg); err != nil {
		return nil, err
	}
	cfg.settings = settings
	for name, sc := range cfg.Scenario {
		over := sc.Sections()
		if len(over) == 0 {
			continue
		}
		merged := maps.Clone(settings)
		mergeInto(merged, over)
		var d Config
		if err := decode(merged, &d); err != nil {
			return nil, err
		}
		cfg.SetScenarioConfig(name, &d)
	}
	return &cfg, nil
}

// Default returns the embedded config.yaml, decoded.
func Default() (*Config, error) {
	var m map[string]any
	if err := yaml.NewDecoder(bytes.NewReader(dmabench.DefaultConfig)).Decode(&m); err != nil {
		return nil, fmt.Errorf("embedded config.yaml: %w", err)
	}
	return Decode(lowerKeys(m))
}

// decode is viper's UnmarshalExact: weakly typed, unused keys an error.
func decode(in map[string]any, out *Config) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
	})
	if err != nil {
		return err
	}
	return d.Decode(in)
}

// mergeInto sets every leaf of over in dst, copying the maps on the way
// so that dst's own are left as they were.
func mergeInto(dst, over map[string]any) {
	for k, v := range over {
		k = strings.ToLower(k)
		sub, ok := asMap(v)
		if !ok {
			dst[k] = v
			continue
		}
		cur, _ := asMap(dst[k])
		next := maps.Clone(cur)
		if next == nil {
			next = map[string]any{}
		}
		mergeInto(next, sub)
		dst[k] = next
	}
}

func asMap(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	return m, ok
}

// lowerKeys lowers every key and drops empty sections, as the loader's
// merged settings have them.
func lowerKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := asMap(v); ok {
			if len(sub) == 0 {
				continue
			}
			v = lowerKeys(sub)
		}
		out[strings.ToLower(k)] = v
	}
	return out
}
