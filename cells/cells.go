// Package cells holds the types of a run's results: the cell a result
// names, one cell's result, and the results document that holds them with
// the configuration, tool and host that made them. The matrix produces
// them; report, compare and merge read them. It imports only the core
// types, so every package above can share them.
package cells

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/dmabench/dmabench"
	"github.com/dmabench/dmabench/dma"
)

// Cell names one replay.
type Cell struct {
	Scenario  string `json:"scenario"`
	Allocator string `json:"allocator"`
	Platform  string `json:"platform"`
	Seed      uint64 `json:"seed"`
}

func (c Cell) String() string {
	return fmt.Sprintf("%s/%s/%s/seed=%d", c.Scenario, c.Allocator, c.Platform, c.Seed)
}

// Result is one cell's outcome.
type Result struct {
	Cell
	Metrics map[string]float64 `json:"metrics"`
	// Extfrag is the page allocator's fragmentation at the end of the
	// cell, per order, when the platform reports it.
	Extfrag *dma.Frag `json:"extfrag,omitempty"`
	// Misuse lists the first events that broke the DMA API's rules, with
	// their trace lines; Leaks the objects still live when a finite
	// workload (a trace) ended.
	Misuse []dma.MisuseEntry `json:"misuse,omitempty"`
	Leaks  []dma.Leak        `json:"leaks,omitempty"`
	// Pools breaks the cell down by pool: what each workload's callers
	// did with each pool it created, and what the model held for it.
	Pools []PoolResult `json:"pools,omitempty"`
	// Workloads holds each workload's own metrics (a scenario runs
	// several; the cell's metrics add them up).
	Workloads []WorkloadResult `json:"workloads,omitempty"`
	// Refused says why a model refused to run on the platform; such a
	// cell has no metrics.
	Refused string `json:"refused,omitempty"`
	// Err is set when the cell could not run (a source failed, say).
	Err error `json:"-"`
}

// TracePrefix names a trace file as a workload: trace:FILE. A trace
// replays alike for every seed (the seed shapes only generated
// workloads), so its modeled results are exact.
const TracePrefix = "trace:"

// Schema names the results document's version.
const Schema = "dmabench/results/v1"

// Tool describes the program that made a result.
type Tool struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Go       string `json:"go"`
	Revision string `json:"revision,omitempty"`
}

// Host describes the machine a result was measured on.
type Host struct {
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
}

// Document is the results file.
type Document struct {
	Schema string `json:"schema"`
	Tool   Tool   `json:"tool"`
	Host   Host   `json:"host"`
	Config any    `json:"config"`
	// Traces names each replayed trace file with its checksum.
	Traces map[string]string `json:"traces,omitempty"`
	Cells  []Result          `json:"cells"`
}

// NewDocument wraps results with the config that produced them and the
// facts of this tool and host.
func NewDocument(config any, results []Result) *Document {
	t := Tool{Name: "dmabench", Version: dmabench.Version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				t.Revision = s.Value
			}
		}
	}
	return &Document{
		Schema: Schema, Tool: t,
		Host:   Host{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), CPUModel: cpuModel()},
		Config: config, Cells: results,
	}
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ReadDocument reads a results file.
func ReadDocument(path string) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseDocument(path, data)
}

// ParseDocument reads a results document; its config stays raw JSON.
func ParseDocument(name string, data []byte) (*Document, error) {
	var doc struct {
		Schema string          `json:"schema"`
		Config json.RawMessage `json:"config"`
		Cells  []Result        `json:"cells"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, jsonError(name, data, err)
	}
	if doc.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %q, want %q", name, doc.Schema, Schema)
	}
	if len(doc.Config) == 0 || string(doc.Config) == "null" {
		return nil, fmt.Errorf("%s: no config: a results file names what it measured", name)
	}
	seen := make(map[Cell]bool, len(doc.Cells))
	for i, c := range doc.Cells {
		switch {
		case seen[c.Cell]:
			return nil, fmt.Errorf("%s: cell %d (%s) appears twice", name, i+1, c.Cell)
		case c.Refused == "" && len(c.Metrics) == 0:
			return nil, fmt.Errorf("%s: cell %d (%s) has no metrics and was not refused", name, i+1, c.Cell)
		}
		for k, v := range c.Metrics {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s: cell %d (%s): metric %s is %v", name, i+1, c.Cell, k, v)
			}
		}
		seen[c.Cell] = true
	}
	return &Document{Schema: doc.Schema, Config: doc.Config, Cells: doc.Cells}, nil
}

// CheckCells refuses a document holding a cell its own configuration does
// not have: expected lists the cells of that configuration.
func CheckCells(name string, doc *Document, expected []Cell) error {
	want := make(map[Cell]bool, len(expected))
	for _, c := range expected {
		want[c] = true
	}
	for i, c := range doc.Cells {
		if !want[c.Cell] {
			return fmt.Errorf("%s: cell %d (%s) is not one of its configuration's", name, i+1, c.Cell)
		}
	}
	return nil
}

// jsonError places a decoding error at its line and column of the file,
// and names the field a value of the wrong type was found in.
func jsonError(name string, data []byte, err error) error {
	var off int64
	msg := err.Error()
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
		msg = fmt.Sprintf("field %s: a JSON %s where %s is wanted", typ.Field, typ.Value, typ.Type)
	default:
		return fmt.Errorf("%s: %v", name, err)
	}
	off = min(max(off, 0), int64(len(data)))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Errorf("%s:%d:%d: %s", name, line, col, msg)
}

// Merge joins the results of a sharded sweep: the documents docs, read
// from the files named by names, must have measured one configuration and
// hold no cell twice; expected says which cells that configuration has,
// and a missing one is an error naming every one missing. The result
// holds every cell in expected's order, with the first document's config.
func Merge(names []string, docs []*Document, expected func(config json.RawMessage) ([]Cell, error)) (*Document, error) {
	if len(docs) == 0 {
		return nil, fmt.Errorf("merge: no results")
	}
	first := docs[0]
	var results []Result
	seen := map[Cell]bool{}
	for i, doc := range docs {
		if i > 0 && ConfigHash(doc.Config) != ConfigHash(first.Config) {
			text, _ := DiffKeys(ConfigDiff(first.Config, doc.Config))
			return nil, fmt.Errorf("%s: measured another configuration than %s: %s differ", names[i], names[0], text)
		}
		for _, r := range doc.Cells {
			if seen[r.Cell] {
				return nil, fmt.Errorf("%s: cell %s appears twice", names[i], r.Cell)
			}
			seen[r.Cell] = true
			results = append(results, r)
		}
	}
	raw, _ := first.Config.(json.RawMessage)
	all, err := expected(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", names[0], err)
	}
	var missing []string
	pos := make(map[Cell]int, len(all))
	for i, c := range all {
		pos[c] = i
		if !seen[c] {
			missing = append(missing, c.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("merge: %d cells missing:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	slices.SortStableFunc(results, func(a, b Result) int { return pos[a.Cell] - pos[b.Cell] })
	return NewDocument(first.Config, results), nil
}

// ConfigHash identifies what a result measured: the SHA-256 of the config
// without the keys that only steer the run (seeds, jobs, output), so runs
// with other seeds compare as the same configuration.
func ConfigHash(config any) string {
	b, _ := json.Marshal(config)
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		for _, k := range steering {
			delete(m, k)
		}
		b, _ = json.Marshal(m)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("sha256:%x", sum[:8])
}

// steering are the config keys that only steer a run (how many seeds, how
// many at once, where the output goes, how it is shown): results measured
// with other values of them measured the same thing.
var steering = []string{"seeds", "seed_list", "jobs", "out", "name", "format", "columns"}

// ConfigDiff returns the keys (dotted paths) whose values differ between
// two configurations, as JSON sees them, leaving out the keys that only
// steer a run and those allow names (a key, or a section above it); nil
// when they measured the same thing.
func ConfigDiff(a, b any, allow ...string) []string {
	fa, fb := flatten(a), flatten(b)
	var out []string
	for k, v := range fa {
		if w, ok := fb[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return slices.DeleteFunc(out, func(k string) bool {
		for _, a := range allow {
			if k == a || strings.HasPrefix(k, a+".") {
				return true
			}
		}
		return false
	})
}

// DiffKeys words keys that differ (ConfigDiff) for a message, and gives
// what --allow takes to accept them: up to eight keys by name; more by
// section (a key's first two parts, platform.cvm.ram_mib in platform.cvm),
// each with its count, since results from two builds of dmabench that
// added knobs between them can differ in a hundred.
func DiffKeys(keys []string) (text, allow string) {
	if len(keys) <= 8 {
		return strings.Join(keys, ", "), strings.Join(keys, ",")
	}
	var sections []string
	members := map[string][]string{}
	for _, k := range keys {
		s := k
		if parts := strings.SplitN(k, ".", 3); len(parts) == 3 {
			s = parts[0] + "." + parts[1]
		}
		if members[s] == nil {
			sections = append(sections, s)
		}
		members[s] = append(members[s], k)
	}
	words := make([]string, len(sections))
	for i, s := range sections {
		if m := members[s]; len(m) == 1 {
			words[i] = m[0]
			sections[i] = m[0]
		} else {
			words[i] = fmt.Sprintf("%s.* (%d keys)", s, len(m))
		}
	}
	return fmt.Sprintf("%d keys: %s", len(keys), strings.Join(words, ", ")), strings.Join(sections, ",")
}

// Incomparable words why results measured with configurations a and b,
// which differ in keys (ConfigDiff), are not compared: the keys
// (DiffKeys), the --allow that compares them anyway, and, when one has
// keys the other lacks, that two builds of dmabench wrote them.
func Incomparable(a, b any, keys []string) string {
	text, allow := DiffKeys(keys)
	msg := fmt.Sprintf("%s (--allow %s compares them anyway, for an A/B of those knobs)", text, allow)
	if n := onlyInOne(a, b); n > 0 {
		msg += fmt.Sprintf("; %d of the keys are in one result only: two builds of dmabench that know other knobs wrote them, so re-measure the older one with this build", n)
	}
	return msg
}

// onlyInOne counts the keys one configuration has and the other lacks:
// results written by two builds of dmabench, one of which knows knobs the
// other does not.
func onlyInOne(a, b any) int {
	fa, fb := flatten(a), flatten(b)
	n := 0
	for k := range fa {
		if _, ok := fb[k]; !ok {
			n++
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			n++
		}
	}
	return n
}

// flatten returns a config's leaves by dotted path, each as its JSON.
func flatten(config any) map[string]string {
	data, _ := json.Marshal(config)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	for _, k := range steering {
		delete(m, k)
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if mm, ok := v.(map[string]any); ok && len(mm) > 0 {
			for k, x := range mm {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
			return
		}
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	}
	walk("", m)
	return out
}

// SeedSet says which seeds a results file holds.
func SeedSet(doc *Document) string {
	seen := map[uint64]bool{}
	for _, c := range doc.Cells {
		seen[c.Seed] = true
	}
	var ss []string
	for _, s := range slices.Sorted(maps.Keys(seen)) {
		ss = append(ss, strconv.FormatUint(s, 10))
	}
	return strings.Join(ss, ",")
}

// PoolResult is one pool of a cell: its workload, what the pool's callers
// did with it, and, for a pool-based model, what the model held for it.
type PoolResult struct {
	Workload string `json:"workload"`
	dma.PoolUse
	Model *dma.PoolStats `json:"model,omitempty"`
}

// WorkloadResult is one workload of a cell and the metrics it reports.
type WorkloadResult struct {
	Name    string             `json:"name"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// ReadInputs reads results files given as inputs to compare, merge or
// report: each once (the same file twice is an error), each holding only
// cells of its own configuration, as expected says.
func ReadInputs(paths []string, expected func(config json.RawMessage) ([]Cell, error)) ([]*Document, error) {
	var docs []*Document
	var seen []os.FileInfo
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		for i, s := range seen {
			if os.SameFile(fi, s) {
				return nil, fmt.Errorf("%s: the same file as %s, given twice", path, paths[i])
			}
		}
		seen = append(seen, fi)
		doc, err := ReadDocument(path)
		if err != nil {
			return nil, err
		}
		want, err := expected(doc.Config.(json.RawMessage))
		if err != nil {
			return nil, fmt.Errorf("%s: config: %w", path, err)
		}
		if err := CheckCells(path, doc, want); err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
	return docs, nil
}
