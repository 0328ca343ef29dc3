package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/bench"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/sweep"
	"github.com/dmabench/dmabench/workloads/trace"
)

// usageError is bad input from the user (registry.UsageError): it exits
// with status 2.
type usageError = registry.UsageError

var usagef = registry.Usagef

// Config is the run's configuration.
type Config = registry.Config

// Main runs the command line and returns the exit status: 0 on success, 1
// when the run failed, 2 on bad input.
func Main(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:   "dmabench",
		Short: "Benchmark and workload-replay harness for DMA allocators",
		Long: `dmabench replays device workloads (USB transfer descriptors, SCSI
scatterlists, network rx rings) against models of the Linux DMA allocators on
modeled machines, and reports throughput, fragmentation, failure rates and
GFP_ATOMIC pressure.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{Err: err} })
	root.AddCommand(newRunCmd(stdout, stderr), newListCmd(stdout), newValidateCmd(stdout), newRecordCmd(stdout, stderr), newReplayCmd(stdout, stderr), newImportCmd(stdout, stderr), newConvertCmd(stdout), newSizeCmd(stdout), newCompareCmd(stdout), newMergeCmd(stdout), newReportCmd(stdout), newBenchCmd(stdout), newExplainCmd(stdout))
	var cpuProfile string
	stop := func() error { return nil }
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the command to `FILE`, for go tool pprof: where the models spend host time")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		s, err := bench.Profile(cpuProfile)
		if err != nil {
			return usageError{Err: fmt.Errorf("--cpuprofile: %w", err)}
		}
		stop = s
		return nil
	}
	err := root.Execute()
	if serr := stop(); err == nil {
		err = serr
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "dmabench: %v\n", err)
	if badInput(err) {
		return 2
	}
	if errors.As(err, new(*sweep.Interrupted)) {
		return 130
	}
	return 1
}

// badInput reports an error caused by what the user gave: a flag, a
// config, a file (exit 2); any other error is the environment's (exit 1).
func badInput(err error) bool {
	var ue usageError
	var ie *dma.InputError
	var te *trace.Error
	return errors.As(err, &ue) || errors.As(err, &ie) || errors.As(err, &te) || isCobraUsage(err)
}

// usageArgs makes a wrong number of arguments a usage error (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{Err: err}
		}
		return nil
	}
}

// isCobraUsage spots cobra's unknown-command error, which it returns as a
// plain error (flag errors go through SetFlagErrorFunc, argument counts
// through usageArgs).
func isCobraUsage(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command")
}
