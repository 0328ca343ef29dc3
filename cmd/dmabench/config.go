package main

import (
	"github.com/spf13/pflag"

	"github.com/dmabench/dmabench/registry"
)

// loadConfig builds the run's config: embedded defaults < file < env <
// flags (registry.Load).
func loadConfig(file string, flags *pflag.FlagSet) (*Config, error) {
	return registry.Load(file, flags)
}

var locateKnob = registry.LocateKnob

// cellConfig loads the config of one workload on one platform and
// allocator (record, size), with events per replay when above 0, and
// validates it.
func cellConfig(file, workload, allocator, platform string, events int64) (*Config, error) {
	cfg, err := loadConfig(file, nil)
	if err != nil {
		return nil, err
	}
	cfg.Workloads, cfg.Allocators, cfg.Platforms = []string{workload}, []string{allocator}, []string{platform}
	if events > 0 {
		cfg.Events = events
	}
	if err := cfg.Validate(); err != nil {
		return nil, locateKnob(file, err)
	}
	return cfg, nil
}
