package progress

import (
	"io"
	"strings"
	"testing"
)

// TestMovesWithinACell: progress counts the events inside a cell, so a
// single long cell shows movement, and the estimate comes from the work
// done; the events a finished cell did not need count as done.
func TestMovesWithinACell(t *testing.T) {
	var b strings.Builder
	m, err := New("plain", &b, 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	m.every = 0
	m.Events(500)
	if !strings.Contains(b.String(), "0/2 cells, 25% of events") {
		t.Fatalf("no movement inside the cell:\n%s", b.String())
	}
	m.Events(500)
	m.Cell(1000)
	m.Events(100)
	m.Cell(100) // a trace that ended early
	if out := b.String(); !strings.Contains(out, "2/2 cells, 100% of events") || !strings.Contains(out, "1/2 cells, 55% of events") {
		t.Fatalf("progress:\n%s", out)
	}
	var nilMeter *Meter
	nilMeter.Events(1) // none: reports nothing
	nilMeter.Cell(1)
}

// TestTaskCountsBytesRead: a task (an import) reports the share of its
// input read through Reader, with a rate and an estimate.
func TestTaskCountsBytesRead(t *testing.T) {
	var b strings.Builder
	m, err := NewTask("plain", &b, "import x.txt", 1000, "bytes")
	if err != nil {
		t.Fatal(err)
	}
	m.every = 0
	buf := make([]byte, 250)
	r := Reader(strings.NewReader(strings.Repeat("a", 1000)), m)
	r.Read(buf)
	r.Read(buf)
	if out := b.String(); !strings.Contains(out, "dmabench: import x.txt: 50% of 1000 bytes,") || !strings.Contains(out, "left") {
		t.Fatalf("progress:\n%s", out)
	}
	if rd := strings.NewReader("x"); Reader(rd, nil) != io.Reader(rd) {
		t.Fatal("without a meter, Reader should hand back the reader itself")
	}
}
