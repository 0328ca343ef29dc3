package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/cells"
)

// baselineRun is how results/baselines/main.json is measured
// (results/README.md), seeds and output left to the caller.
var baselineRun = []string{"run", "-w", "usb-uhci,scsi,netrx,mixed", "-a", "dmapool,slab", "-p", "x86,sa1111"}

// TestBaselineIsCurrent: the committed baseline that CI and the README
// compare against was measured with today's configuration and gives
// today's modeled results (two of its ten seeds re-run here). A change
// that moves what dmabench measures fails here until the baseline is
// re-measured, instead of failing every user's first compare with a
// wall of differing keys.
func TestBaselineIsCurrent(t *testing.T) {
	const remeasure = "re-measure it: go run ./cmd/dmabench run -w usb-uhci,scsi,netrx,mixed -a dmapool,slab -p x86,sa1111 -s 10 -j 1 --name main --out results/baselines"
	base := readResults(t, filepath.Join("..", "..", "results", "baselines", "main.json"))
	dir := t.TempDir()
	args := append(append([]string{}, baselineRun...), "--seed-list", "1,7", "-j", "2", "--out", dir, "--name", "now", "--progress", "none", "-f", "json")
	if code, _, errs := run(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	now := readResults(t, filepath.Join(dir, "now.json"))
	if d := cells.ConfigDiff(base.Config, now.Config); len(d) > 0 {
		t.Fatalf("results/baselines/main.json was measured with another configuration (%d keys differ, first %s); %s", len(d), d[0], remeasure)
	}
	byCell := map[string]json.RawMessage{}
	for _, c := range base.Cells {
		byCell[c.Cell.String()] = modeledCell(t, c)
	}
	if len(now.Cells) != 32 {
		t.Fatalf("%d cells, want 32", len(now.Cells))
	}
	for _, c := range now.Cells {
		want, ok := byCell[c.Cell.String()]
		if !ok {
			t.Fatalf("results/baselines/main.json has no cell %s; %s", c.Cell, remeasure)
		}
		if got := modeledCell(t, c); string(got) != string(want) {
			t.Fatalf("cell %s: modeled results differ from results/baselines/main.json; %s\nnow:      %.300s\nbaseline: %.300s", c.Cell, remeasure, got, want)
		}
	}
}

// modeledCell is a cell's result as JSON without its host timings: what
// is the same for a configuration and seed on any machine.
func modeledCell(t *testing.T, c any) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if ms, ok := m["metrics"].(map[string]any); ok {
		for k := range ms {
			if strings.HasPrefix(k, "host_") {
				delete(ms, k)
			}
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(fmt.Errorf("cell %v: %w", c, err))
	}
	return out
}
