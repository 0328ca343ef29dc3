// Package dma is dmabench's shared vocabulary: modeled time, GFP flags,
// calling contexts, devices, requests, blocks, events and the small
// interfaces through which the engine, the allocator models, the platform
// models and the workloads talk to each other.
//
// Everything here is plain data. Allocators, platforms and workloads import
// this package and nothing of each other, so any allocator can be wired to
// any platform and fed by any workload.
package dma
