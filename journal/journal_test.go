package journal

import (
	"errors"
	"os"
	"testing"

	"github.com/dmabench/dmabench/cells"
)

type config struct {
	Events int `json:"events"`
	Seeds  int `json:"seeds"`
}

func result(seed uint64) *cells.Result {
	return &cells.Result{Cell: cells.Cell{Scenario: "s", Allocator: "a", Platform: "p", Seed: seed}, Metrics: map[string]float64{"events": 1}}
}

// TestJournalSurvivesATornLine: cells appended before a kill come back;
// a line the kill cut short is ignored, and the next run goes on after
// it.
func TestJournalSurvivesATornLine(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, "n")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Begin(config{Events: 10}); err != nil {
		t.Fatal(err)
	}
	for s := uint64(1); s <= 2; s++ {
		if err := r.Add(result(s)); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	f, _ := os.OpenFile(r.Path(".journal"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"scenario":"s","allocator":"a","platform":"p","seed":3,"metr`)
	f.Close()

	r, err = Open(dir, "n")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Resume(config{Events: 10, Seeds: 5})
	if err != nil || len(got) != 2 {
		t.Fatalf("resumed %d cells, %v; want 2", len(got), err)
	}
	if err := r.Begin(config{Events: 10}); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(result(3)); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Resume(config{Events: 10}); len(got) != 3 {
		t.Fatalf("after a new cell: %d cells, want 3", len(got))
	}
	var m *MismatchError
	if _, err := r.Resume(config{Events: 20}); !errors.As(err, &m) || len(m.Keys) != 1 || m.Keys[0] != "events" {
		t.Fatalf("another config: %v", err)
	}
}

// TestLockKeepsASecondRunOut: the lock is held while a run lives and
// free once it ends.
func TestLockKeepsASecondRunOut(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, "n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "n"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	a.Close()
	b, err := Open(dir, "n")
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	b.Close()
}
