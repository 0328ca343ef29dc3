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
