package metrics

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
)

var update = flag.Bool("update", false, "rewrite the generated files and golden outputs")

// TestMetricsDoc keeps docs/metrics.md the catalog's: run with -update
// after changing a declaration.
func TestMetricsDoc(t *testing.T) {
	var b strings.Builder
	WriteMarkdown(&b)
	const path = "../docs/metrics.md"
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != b.String() {
		t.Fatalf("%s is not the catalog's; run go test ./metrics -run TestMetricsDoc -update", path)
	}
}

// TestCatalogIsWellFormed: keys are unique and every declaration says
// what it means, in what unit, from whom.
func TestCatalogIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Catalog {
		if seen[d.Key] {
			t.Errorf("%s declared twice", d.Key)
		}
		seen[d.Key] = true
		if d.Unit == "" || d.Meaning == "" || d.Producer == "" {
			t.Errorf("%s: unit %q, meaning %q, producer %q", d.Key, d.Unit, d.Meaning, d.Producer)
		}
		if strings.HasPrefix(d.Key, "host_") == d.Exact {
			t.Errorf("%s: host metrics, and only they, are noisy", d.Key)
		}
	}
}

// TestSummaryKeysDeclared: every key the recorder can produce is
// declared, conditional ones included, and the misuse kinds match the
// engine's.
func TestSummaryKeysDeclared(t *testing.T) {
	r := &Recorder{AllocFail: 1, KernelCompared: 1}
	r.meter = &dma.Meter{}
	s := r.Summary(Host{})
	r.Platform(s)
	for k := range s {
		if _, ok := Lookup(k); !ok {
			t.Errorf("the recorder produces %s, which has no declaration", k)
		}
	}
	for m := engine.MisuseUnknownFree; m < engine.NumMisuse; m++ {
		if _, ok := Lookup("misuse_" + m.String()); !ok {
			t.Errorf("misuse kind %s has no declaration", m)
		}
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		key  string
		v    float64
		want string
	}{
		{"peak_reserved_bytes", 1536, "1.50 KiB"},
		{"peak_reserved_bytes", 14940600, "14.2 MiB"},
		{"latency_p99_ns", 850, "850 ns"},
		{"latency_p99_ns", 1_250_000, "1.25 ms"},
		{"modeled_ops_per_sec", 1.49406e7, "14.9 M ops/s"},
		{"failure_rate", 7.7416e-05, "0.008%"},
		{"failure_rate", 0.25, "25.0%"},
		{"events", 100000, "100000"},
		{"frag_peak_ratio", 1.234, "1.23x"},
		{"min_free_headroom_pages", -12, "-12"},
	} {
		if got := MustLookup(tc.key).Human(tc.v); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.key, tc.v, got, tc.want)
		}
	}
}
