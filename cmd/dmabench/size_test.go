package main

import (
	"strings"
	"testing"
)

// TestSizeSwiotlb: the size command finds a size with no failure for the
// cvm scenario, and reports mappings of huge pages as never fitting.
func TestSizeSwiotlb(t *testing.T) {
	code, out, errs := run(t, "size", "swiotlb", "-w", "cvm-mixed", "-p", "cvm", "-s", "2", "-n", "20000")
	if code != 0 || !strings.Contains(out, "smallest size with no failed mapping:") || !strings.Contains(out, "never fit: none") {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	t.Setenv("DMABENCH_WORKLOAD_NVME_SEGMENT_BYTES", "2097152")
	t.Setenv("DMABENCH_WORKLOAD_NVME_SIZES", "2097152")
	t.Setenv("DMABENCH_WORKLOAD_NVME_WEIGHTS", "1")
	t.Setenv("DMABENCH_WORKLOAD_NVME_MAX_TRANSFER_KIB", "2048")
	code, out, errs = run(t, "size", "swiotlb", "-w", "nvme", "-p", "cvm", "-s", "1", "-n", "5000")
	if code != 0 || !strings.Contains(out, "up to 2097152 bytes: no pool size serves them") {
		t.Fatalf("2 MiB mappings: exit %d: %s %s", code, out, errs)
	}
	if code, _, errs := run(t, "size", "swiotlb", "-w", "nvme", "-p", "x86"); code != 2 || !strings.Contains(errs, "cvm and swiotlb") {
		t.Errorf("a platform without swiotlb: exit %d %s", code, errs)
	}
}
