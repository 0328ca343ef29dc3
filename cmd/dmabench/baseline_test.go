package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/matrix"
)

// TestBaselineIsCurrent: the committed baseline that CI and the README
// compare against was measured with today's configuration and gives
// today's modeled results (two of its ten seeds re-run here). A change
// that moves what dmabench measures fails here until the baseline is
// re-measured, instead of failing every user's first compare with a
// wall of differing keys.
func TestBaselineIsCurrent(t *testing.T) {
	// How results/baselines/main.json is measured (results/README.md),
	// seeds and output aside.
	cellsOf := []string{"run", "-w", "usb-uhci,scsi,netrx,mixed", "-a", "dmapool,slab", "-p", "x86,sa1111"}
	remeasure := "re-measure it: go run ./cmd/dmabench " + strings.Join(cellsOf, " ") + " -s 10 -j 1 --name main --out results/baselines"
	base := readResults(t, filepath.Join("..", "..", "results", "baselines", "main.json"))
	dir := t.TempDir()
	args := append(cellsOf, "--seed-list", "1,7", "-j", "2", "--out", dir, "--name", "now", "--progress", "none", "-f", "json")
	if code, _, errs := run(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	now := readResults(t, filepath.Join(dir, "now.json"))
	if d := cells.ConfigDiff(base.Config, now.Config); len(d) > 0 {
		t.Fatalf("results/baselines/main.json was measured with another configuration (%d keys differ, first %s); %s", len(d), d[0], remeasure)
	}
	dropHost(base.Cells...)
	dropHost(now.Cells...)
	byCell := map[string]matrix.Result{}
	for _, c := range base.Cells {
		byCell[c.Cell.String()] = c
	}
	if len(now.Cells) != 32 {
		t.Fatalf("%d cells, want 32", len(now.Cells))
	}
	for _, c := range now.Cells {
		want, ok := byCell[c.Cell.String()]
		if !ok {
			t.Fatalf("results/baselines/main.json has no cell %s; %s", c.Cell, remeasure)
		}
		got, _ := json.Marshal(c)
		if w, _ := json.Marshal(want); string(got) != string(w) {
			t.Fatalf("cell %s: modeled results differ from results/baselines/main.json; %s\nnow:      %.300s\nbaseline: %.300s", c.Cell, remeasure, got, w)
		}
	}
}
