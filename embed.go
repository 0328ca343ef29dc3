// Package dmabench holds what the tool embeds from the top of the
// repository: the default run configuration.
package dmabench

import _ "embed"

// DefaultConfig is config.yaml: the run `dmabench run` makes when given no
// other configuration.
//
//go:embed config.yaml
var DefaultConfig []byte

// Version is the tool's version, written into every result.
const Version = "0.1.0"
