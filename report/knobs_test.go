package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/cells"
)

// TestKnobLines: scenarios that run the same workloads and differ in a
// knob or two are summed up as an A/B of those knobs; two twins of one
// base, different workloads, or more than two knob names are not.
func TestKnobLines(t *testing.T) {
	config := json.RawMessage(`{"scenario": {
		"base":   {"workloads": ["usb-ohci"], "platform": {"sa1111": {"mode": "first-1mib"}}},
		"atomic": {"workloads": ["usb-ohci"], "platform": {"sa1111": {"mode": "first-1mib"}},
		           "allocator": {"dmapool": {"coherent_gfp": "atomic"}, "slab": {"coherent_gfp": "atomic"}}},
		"old":    {"workloads": ["usb-ohci"], "platform": {"sa1111": {"mode": "first-1mib"}, "pressure": {"gfp_semantics": "2002"}}},
		"other":  {"workloads": ["scsi"], "platform": {"sa1111": {"mode": "first-1mib"}}},
		"many":   {"workloads": ["usb-ohci"], "platform": {"sa1111": {"mode": "a20", "ram_mib": 8, "drac": 8}}}
	}}`)
	var rs []cells.Result
	for i, s := range []string{"base", "atomic", "old", "other", "many"} {
		fails := []float64{10, 2, 0, 5, 7}[i]
		for _, p := range []string{"x86", "sa1111"} {
			f := fails
			if p == "x86" {
				f = 0
			}
			rs = append(rs, cells.Result{Cell: cells.Cell{Scenario: s, Allocator: "dmapool", Platform: p, Seed: 1},
				Metrics: map[string]float64{"alloc_failures": f, "events": 100}})
		}
	}
	doc := cells.NewDocument(config, rs)
	got := strings.Join(knobLines(doc, newView([]*cells.Document{doc})), "\n")
	want := `atomic against base (allocator.*.coherent_gfp=atomic):
  sa1111: alloc_failures 10 → 2
old against base (platform.pressure.gfp_semantics=2002):
  sa1111: alloc_failures 10 → 0`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
