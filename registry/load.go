package registry

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/dmabench/dmabench"
)

// flagKeys maps run flags to config keys. Flags are bound one by one: binding
// cobra's whole flag set would drag "help" into the config.
var flagKeys = map[string]string{
	"workload": "workloads", "allocator": "allocators", "platform": "platforms",
	"seeds": "seeds", "events": "events", "jobs": "jobs", "format": "format",
	"out": "out", "name": "name", "columns": "columns", "seed-list": "seed_list", "kernel-tree": "allocator.kernel.tree",
}

// Load builds the run's config: embedded defaults < file < env < flags.
func Load(file string, flags *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(dmabench.DefaultConfig)); err != nil {
		return nil, fmt.Errorf("embedded config.yaml: %w", err)
	}
	known := map[string]bool{}
	// explicit: the keys the user set, and where (a file, the
	// environment, a flag), which a trace's knobs do not override.
	explicit := map[string]string{}
	for _, k := range v.AllKeys() {
		known[k] = true
		// Every prefix of a leaf key is a section.
		for i := range k {
			if k[i] == '.' {
				known[k[:i]] = true
			}
		}
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, Usagef("config: %v", err)
		}
		if err := CheckKeys(file, data, known); err != nil {
			return nil, err
		}
		if err := v.MergeConfig(bytes.NewReader(data)); err != nil {
			return nil, Usagef("config %s: %v", file, err)
		}
		fv := viper.New()
		fv.SetConfigType("yaml")
		if fv.ReadConfig(bytes.NewReader(data)) == nil {
			for _, k := range fv.AllKeys() {
				explicit[k] = "config " + file
			}
		}
	}
	for k := range known {
		if _, set := os.LookupEnv(envName(k)); set {
			explicit[k] = "environment " + envName(k)
		}
	}
	if err := checkEnv(known); err != nil {
		return nil, err
	}
	v.SetEnvPrefix("DMABENCH")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if flags != nil {
		for name, key := range flagKeys {
			if f := flags.Lookup(name); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return nil, err
				}
				if f.Changed {
					explicit[key] = "flag --" + name
				}
			}
		}
	}
	if err := applySets(v, flags, known, explicit); err != nil {
		return nil, err
	}
	cfg, err := Decode(v.AllSettings())
	if err != nil {
		return nil, decodeError(file, err)
	}
	cfg.explicit = explicit
	return cfg, nil
}

// decodeError turns a value of the wrong type into an error that says
// where it came from: the environment variable, or the file and line.
func decodeError(file string, err error) error {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "error(s):"); ok {
		msg = strings.TrimSpace(rest)
	}
	// mapstructure names the field first, quoted: 'scenario[s].start_ms[x]'.
	if first, rest, ok := strings.Cut(msg, "'"); ok && first == "" {
		if path, _, ok := strings.Cut(rest, "'"); ok {
			key := strings.NewReplacer("[", ".", "]", "").Replace(path)
			env := "DMABENCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
			if _, set := os.LookupEnv(env); set {
				return Usagef("environment %s: %s", env, msg)
			}
		}
	}
	return Locate(file, errors.New(msg))
}

// checkEnv rejects DMABENCH_* variables that name no config key: a typo in
// CI must not be silently ignored.
func checkEnv(known map[string]bool) error {
	envKeys := map[string]string{}
	for k := range known {
		envKeys[envName(k)] = k
	}
	kinds := KnobKinds()
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "DMABENCH_") {
			continue
		}
		key, ok := envKeys[name]
		if !ok {
			return Usagef("environment variable %s names no config key (e.g. DMABENCH_SEEDS, DMABENCH_PLATFORM_X86_RAM_MIB)", name)
		}
		if err := CheckNumber(key, value, kinds[key]); err != nil {
			return Usagef("environment %s: %v", name, err)
		}
	}
	return nil
}

// envName is the environment variable that sets key.
func envName(key string) string {
	return "DMABENCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// locateKnob says where a knob that failed validation was set: the
// environment variable, when it is set, or the config file and line.
func LocateKnob(file string, err error) error {
	var ke *KnobError
	if errors.As(err, &ke) {
		if _, set := os.LookupEnv(envName(ke.Key)); set {
			return Usagef("environment %s: %v", envName(ke.Key), err)
		}
	}
	return Locate(file, err)
}

// applySets applies --set KEY=VALUE flags over everything else (see
// ParseSet).
func applySets(v *viper.Viper, flags *pflag.FlagSet, known map[string]bool, explicit map[string]string) error {
	if flags == nil || flags.Lookup("set") == nil {
		return nil
	}
	sets, _ := flags.GetStringArray("set")
	for _, kv := range sets {
		key, value, err := ParseSet(kv, known)
		if err != nil {
			return UsageError{Err: err}
		}
		v.Set(key, value)
		explicit[key] = "--set " + key
	}
	return nil
}
