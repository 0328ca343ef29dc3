// Command dmabench replays DMA allocation workloads against models of the
// Linux DMA allocators on modeled machines and reports throughput,
// fragmentation, failure rates and GFP_ATOMIC pressure.
package main

import "os"

func main() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) }
