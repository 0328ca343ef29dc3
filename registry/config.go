package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dmabench/dmabench"
	"github.com/dmabench/dmabench/allocators/coherent"
	"github.com/dmabench/dmabench/allocators/dmaalloc"
	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/allocators/dmapool26"
	"github.com/dmabench/dmabench/allocators/mempool"
	"github.com/dmabench/dmabench/allocators/pcipool"
	"github.com/dmabench/dmabench/allocators/slab"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/platforms/iommu"
	"github.com/dmabench/dmabench/platforms/pagealloc"
	"github.com/dmabench/dmabench/platforms/sa1111"
	"github.com/dmabench/dmabench/platforms/x64"
	"github.com/dmabench/dmabench/platforms/x86"
	"github.com/dmabench/dmabench/workloads/netrx"
	"github.com/dmabench/dmabench/workloads/nvme"
	"github.com/dmabench/dmabench/workloads/poolbench"
	"github.com/dmabench/dmabench/workloads/scsi"
	"github.com/dmabench/dmabench/workloads/trace"
	"github.com/dmabench/dmabench/workloads/usb"
	"github.com/dmabench/dmabench/workloads/virtio"
)

// TracePrefix names a trace file as a workload: trace:FILE.
const TracePrefix = matrix.TracePrefix

// Config is a whole run: what to run and every model's knobs. It is filled
// from the embedded config.yaml, then a config file, then DMABENCH_*
// environment variables, then flags.
type Config struct {
	Workloads  []string `mapstructure:"workloads" json:"workloads"`
	Allocators []string `mapstructure:"allocators" json:"allocators"`
	Platforms  []string `mapstructure:"platforms" json:"platforms"`
	Seeds      int      `mapstructure:"seeds" json:"seeds"`
	SeedList   []uint64 `mapstructure:"seed_list" json:"seed_list,omitempty"`
	Events     int64    `mapstructure:"events" json:"events"`
	Jobs       int      `mapstructure:"jobs" json:"jobs"`
	Format     string   `mapstructure:"format" json:"format"`
	Columns    []string `mapstructure:"columns" json:"columns"`
	Out        string   `mapstructure:"out" json:"out"`
	Name       string   `mapstructure:"name" json:"name"`

	Platform struct {
		MapFailure string             `mapstructure:"map_failure" json:"map_failure"`
		Pressure   pagealloc.Pressure `mapstructure:"pressure" json:"pressure"`
		X86        x86.Config         `mapstructure:"x86" json:"x86"`
		IOMMU      iommu.Config       `mapstructure:"iommu" json:"iommu"`
		SA1111     sa1111.Config      `mapstructure:"sa1111" json:"sa1111"`
		CVM        x64.Config         `mapstructure:"cvm" json:"cvm"`
		Swiotlb    x64.Config         `mapstructure:"swiotlb" json:"swiotlb"`
	} `mapstructure:"platform" json:"platform"`
	Allocator struct {
		PCIPool    pcipool.Config   `mapstructure:"pcipool" json:"pcipool"`
		DMAPool    dmapool.Config   `mapstructure:"dmapool" json:"dmapool"`
		DMAPool26  dmapool26.Config `mapstructure:"dmapool_26" json:"dmapool_26"`
		Slab       slab.Config      `mapstructure:"slab" json:"slab"`
		SlabDirect slab.Config      `mapstructure:"slab_direct" json:"slab_direct"`
		Mempool    mempool.Config   `mapstructure:"mempool" json:"mempool"`
		DMAAlloc   dmaalloc.Config  `mapstructure:"dmaalloc" json:"dmaalloc"`
		Coherent   coherent.Config  `mapstructure:"coherent" json:"coherent"`
		Kernel     KernelConfig     `mapstructure:"kernel" json:"kernel"`
	} `mapstructure:"allocator" json:"allocator"`
	Workload struct {
		USB       usb.Config       `mapstructure:"usb" json:"usb"`
		SCSI      scsi.Config      `mapstructure:"scsi" json:"scsi"`
		NetRX     netrx.Config     `mapstructure:"netrx" json:"netrx"`
		Poolbench poolbench.Config `mapstructure:"poolbench" json:"poolbench"`
		NVMe      nvme.Config      `mapstructure:"nvme" json:"nvme"`
		VirtioBlk virtio.BlkConfig `mapstructure:"virtio_blk" json:"virtio_blk"`
		VirtioNet struct {
			RX netrx.Config    `mapstructure:"rx" json:"rx"`
			TX virtio.TXConfig `mapstructure:"tx" json:"tx"`
		} `mapstructure:"virtio_net" json:"virtio_net"`
	} `mapstructure:"workload" json:"workload"`
	// Scenario names sets of workloads that run together on one platform.
	Scenario map[string]Scenario `mapstructure:"scenario" json:"scenario"`
	// scenarios holds, for each scenario that sets knobs, its own config.
	scenarios map[string]*Config
	// settings are the merged settings the config was decoded from;
	// explicit the keys among them the user set, and where (Load).
	settings map[string]any
	explicit map[string]string
}

// SetScenarioConfig gives scenario name its own config d: the run's with
// the knobs the scenario sets on top (which the loader merges).
func (c *Config) SetScenarioConfig(name string, d *Config) {
	if c.scenarios == nil {
		c.scenarios = map[string]*Config{}
	}
	c.scenarios[name] = d
}

// KernelConfig points the kernel allocators at a kernel tree.
type KernelConfig struct {
	// Tree is a kernel source folder or a linux-source tarball.
	Tree string `mapstructure:"tree" json:"tree"`
}

// Scenario is workloads sharing one machine. Its platform, allocator and
// workload sections, keyed as the top-level ones, set knobs for its own
// cells on top of the run's (background pressure, the NIC's rx buffers).
type Scenario struct {
	Workloads []string `mapstructure:"workloads" json:"workloads"`
	// StartMS holds a workload back this many modeled milliseconds: its
	// driver is loaded, or its device plugged in, into a machine that is
	// already busy (and, with pressure on, already short of memory).
	StartMS   map[string]int64 `mapstructure:"start_ms" json:"start_ms,omitempty"`
	Platform  map[string]any   `mapstructure:"platform" json:"platform,omitempty"`
	Allocator map[string]any   `mapstructure:"allocator" json:"allocator,omitempty"`
	Workload  map[string]any   `mapstructure:"workload" json:"workload,omitempty"`
}

// sections returns the knobs a scenario sets, as a config subtree.
func (s Scenario) Sections() map[string]any {
	out := map[string]any{}
	for k, m := range map[string]map[string]any{"platform": s.Platform, "allocator": s.Allocator, "workload": s.Workload} {
		if len(m) > 0 {
			out[k] = m
		}
	}
	return out
}

// settings lists the knobs a scenario sets as sorted key=value strings.
func (s Scenario) Settings() []string {
	var out []string
	for k, m := range s.Sections() {
		dmabench.Knobs(k, m, func(key string, v any) { out = append(out, fmt.Sprintf("%s=%v", key, v)) })
	}
	sort.Strings(out)
	return out
}

// ForScenario returns the config a scenario's cells run with: the run's,
// with the knobs the scenario sets.
func (c *Config) ForScenario(name string) *Config {
	if d := c.scenarios[name]; d != nil {
		return d
	}
	return c
}

// Validate checks the run and every model's knobs.
func (c *Config) Validate() error {
	if err := c.checkKnobs(); err != nil {
		return UsageError{err}
	}
	var named []string
	for _, w := range c.Workloads {
		if path, ok := strings.CutPrefix(w, TracePrefix); ok {
			if err := checkTrace(path); err != nil {
				return UsageError{err}
			}
			continue
		}
		named = append(named, w)
	}
	if len(named) > 0 || len(c.Workloads) == 0 {
		valid := append(WorkloadNames(), ScenarioNames(c)...)
		var expanded []string // poolbench/size=N and the like
		for i := range workloads {
			if workloads[i].scenarios != nil {
				expanded = append(expanded, workloads[i].ScenarioNames(c)...)
			}
		}
		for _, w := range named {
			if !slices.Contains(expanded, w) {
				if err := checkNames("workload", []string{w}, valid); err != nil {
					return err
				}
			}
		}
		if len(named) == 0 {
			return checkNames("workload", named, valid)
		}
	}
	// The run's own knobs first: a bad one is then reported as itself, not
	// through the first scenario whose cells inherit it.
	if err := c.validateModels(); err != nil {
		return err
	}
	for _, name := range ScenarioNames(c) {
		sc := c.Scenario[name]
		if err := checkNames("workload", sc.Workloads, WorkloadNames()); err != nil {
			return Usagef("scenario.%s.workloads: %v", name, err)
		}
		if d := c.scenarios[name]; d != nil {
			if err := d.checkKnobs(); err != nil {
				return Usagef("scenario.%s.%v", name, err)
			}
			if err := d.validateModels(); err != nil {
				return Usagef("scenario.%s: %v", name, err)
			}
		}
		for _, w := range slices.Sorted(maps.Keys(sc.StartMS)) {
			if !slices.Contains(sc.Workloads, w) {
				return Usagef("scenario.%s.start_ms.%s: %q is not one of the scenario's workloads (%s)", name, w, w, strings.Join(sc.Workloads, ", "))
			}
			if ms := sc.StartMS[w]; ms < 0 || ms > 3_600_000 {
				return Usagef("scenario.%s.start_ms.%s %d: want 0..3600000", name, w, ms)
			}
		}
	}
	if err := checkNames("allocator", c.Allocators, everyAllocatorName()); err != nil {
		return err
	}
	for _, a := range c.Allocators {
		if !slices.Contains(KernelAllocatorNames(), a) {
			continue
		}
		if c.Allocator.Kernel.Tree == "" {
			return Usagef("allocator %s needs a kernel tree: set allocator.kernel.tree (--kernel-tree PATH)", a)
		}
		if _, err := os.Stat(c.Allocator.Kernel.Tree); err != nil {
			return Usagef("allocator.kernel.tree: %v", err)
		}
	}
	if err := checkNames("platform", c.Platforms, PlatformNames()); err != nil {
		return err
	}
	switch {
	case c.Seeds < 1 || c.Seeds > MaxSeeds:
		return Usagef("seeds %d: want 1..%d", c.Seeds, MaxSeeds)
	case len(c.SeedList) > MaxSeeds:
		return Usagef("seed_list: %d seeds, at most %d", len(c.SeedList), MaxSeeds)
	case len(slices.Compact(slices.Sorted(slices.Values(c.SeedList)))) != len(c.SeedList):
		return Usagef("seed_list %v: a seed given twice", c.SeedList)
	case c.Events < 1 || c.Events > MaxEvents:
		return Usagef("events %d: want 1..%d", c.Events, int64(MaxEvents))
	case c.cellCount() > MaxCells:
		return Usagef("seeds %d: the run has %d cells (%d allocators x %d platforms x %d seeds over its scenarios), more than %d", c.Seeds,
			c.cellCount(), len(c.Allocators), len(c.Platforms), len(c.SeedValues()), MaxCells)
	case c.Jobs < 0:
		return Usagef("jobs %d: want 0 (one per CPU) or more", c.Jobs)
	case !slices.Contains([]string{"summary", "table", "markdown", "csv", "json", "benchfmt", "gha"}, c.Format):
		return Usagef("format %q: valid formats are summary, table, markdown, csv, json, benchfmt, gha", c.Format)
	case unknownColumn(c.Columns) != "":
		return Usagef("columns: unknown metric %q (valid: %s)", unknownColumn(c.Columns), strings.Join(metrics.Keys(), ", "))
	case c.Out == "":
		return Usagef("out: empty output folder")
	}
	return CheckName(c.Name)
}

// MaxName bounds a results name, in bytes: with the extension and the
// temporary file's decoration it must stay within a file name's 255.
const MaxName = 200

// CheckOutputFile checks, before any work, a file the user asked to be
// written (flag names it): given, not a folder, in a folder that exists,
// and a name a file system takes.
func CheckOutputFile(flag, path string) error {
	if path == "" {
		return Usagef("%s FILE is required", flag)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return Usagef("%s %s: a folder, not a file", flag, path)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return Usagef("%s %s: the folder %s does not exist", flag, path, filepath.Dir(path))
	}
	if err := CheckName(filepath.Base(path)); err != nil {
		return Usagef("%s: %v", flag, err)
	}
	return nil
}

// CheckName checks a results name (--name) before anything runs: no path
// separator, no control character, not "." or "..", at most MaxName bytes.
// "" (a timestamp is chosen) passes.
func CheckName(name string) error {
	switch {
	case strings.ContainsAny(name, `/\`):
		return Usagef("name %q: must not contain a path separator", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return Usagef("name %q: must not contain control characters", name)
	case name == "." || name == "..":
		return Usagef("name %q: not a file name", name)
	case len(name) > MaxName:
		return Usagef("name: %d bytes, at most %d", len(name), MaxName)
	}
	return nil
}

// cellCount is how many cells the run has, counted without expanding
// them.
func (c *Config) cellCount() int64 {
	var scenarios int64
	for _, w := range c.Workloads {
		if we := workloadByName(w); we != nil {
			scenarios += int64(len(we.ScenarioNames(c)))
		} else {
			scenarios++
		}
	}
	return scenarios * int64(len(c.Allocators)) * int64(len(c.Platforms)) * int64(len(c.SeedValues()))
}

// checkTrace refuses, before anything runs, a trace that is not a regular
// file (a FIFO would block, /dev/zero never end) or whose header is not a
// trace's; it reads no more than the header.
func checkTrace(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("workload %s%s: %w", TracePrefix, path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("workload %s%s: not a regular file (%s)", TracePrefix, path, fi.Mode().Type())
	}
	r, err := trace.OpenFile(path)
	if err != nil {
		return err
	}
	defer r.Close()
	tr, err := trace.NewReader(path, r)
	if err != nil {
		return err
	}
	return tr.CheckHeader()
}

// unknownColumn returns the first column no metric is declared for.
func unknownColumn(cols []string) string {
	for _, c := range cols {
		if _, ok := metrics.Lookup(c); !ok {
			return c
		}
	}
	return ""
}

// validateModels checks every model's knobs.
func (c *Config) validateModels() error {
	for _, err := range []error{
		c.Platform.X86.Validate(), c.Platform.IOMMU.Validate(), c.Platform.SA1111.Validate(), c.Platform.Pressure.Validate(),
		c.Allocator.PCIPool.Validate(), c.Allocator.DMAPool.Validate(), c.Allocator.DMAPool26.Validate(), c.Allocator.Slab.Validate(),
		c.Allocator.SlabDirect.Validate(), c.Allocator.Mempool.Validate(), c.Allocator.DMAAlloc.Validate(),
		c.Allocator.Coherent.Validate(),
		c.Workload.USB.Validate(), c.Workload.SCSI.Validate(), c.Workload.NetRX.Validate(), c.Workload.Poolbench.Validate(),
		c.Platform.CVM.Validate(), c.Platform.Swiotlb.Validate(), c.Workload.NVMe.Validate(), c.Workload.VirtioBlk.Validate(),
		c.Workload.VirtioNet.RX.Validate(), c.Workload.VirtioNet.TX.Validate(),
	} {
		if err != nil {
			return UsageError{err}
		}
	}
	if _, err := dma.ParseMapPolicy(c.Platform.MapFailure); err != nil {
		return Usagef("platform.%v", err)
	}
	if len(c.Allocator.Mempool.MinNrByPool) > 0 {
		pools, err := allPoolNames(c)
		if err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(c.Allocator.Mempool.MinNrByPool)) {
			if !slices.Contains(pools, name) {
				return Usagef("min_nr_by_pool: no workload creates a pool named %q (valid: %s)", name, strings.Join(pools, ", "))
			}
		}
	}
	if err := checkNames("allocator", []string{c.Allocator.Mempool.Over}, AllocatorNames()); err != nil {
		return Usagef("allocator.mempool.over: %v", err)
	}
	return nil
}

// checkKeys rejects any key of a user's YAML file that the embedded config
// does not have, naming the file, line and key.
func CheckKeys(file string, data []byte, known map[string]bool) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil
		}
		return Usagef("config %s: %v", file, err)
	}
	var second yaml.Node
	if err := dec.Decode(&second); err != io.EOF {
		line := second.Line
		if len(second.Content) > 0 {
			line = second.Content[0].Line
		}
		return Usagef("config %s:%d: a second YAML document: a config file holds one", file, line)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	kinds := KnobKinds()
	var walk func(n *yaml.Node, prefix string) error
	walk = func(n *yaml.Node, prefix string) error {
		inner := innerKey(prefix)
		if n.Kind != yaml.MappingNode {
			if prefix == "" {
				return Usagef("config %s:%d: the top level must be a mapping of keys", file, n.Line)
			}
			if isSection(known, inner) && inner != "allocator.mempool.min_nr_by_pool" {
				return Usagef("config %s:%d: %s: a section of keys is wanted here, not %q", file, n.Line, prefix, n.Value)
			}
			return checkScalar(file, n, prefix, kinds[kindKey(inner)])
		}
		if prefix != "" && known[inner] && !isSection(known, inner) && !strings.HasSuffix(inner, "min_nr_by_pool") && !strings.HasPrefix(inner, "scenario") {
			return Usagef("config %s:%d: %s: a value is wanted here, not a section", file, n.Line, prefix)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			key := strings.ToLower(k.Value)
			if prefix != "" {
				key = prefix + "." + key
			}
			if !known[key] && !scenarioKey(key, known) && !reserveKey(key) {
				return Usagef("config %s:%d: unknown key %q (valid here: %s)", file, k.Line, key, strings.Join(siblings(known, prefix), ", "))
			}
			if err := walk(n.Content[i+1], key); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(doc.Content[0], "")
}

// innerKey is a scenario's knob as the run's key it sets
// (scenario.NAME.platform.x86.ram_mib is platform.x86.ram_mib); other
// keys are themselves.
func innerKey(key string) string {
	parts := strings.SplitN(key, ".", 3)
	if parts[0] == "scenario" && len(parts) == 3 {
		rest := parts[2]
		for _, s := range []string{"platform", "allocator", "workload"} {
			if rest == s || strings.HasPrefix(rest, s+".") {
				return rest
			}
		}
		if strings.HasPrefix(rest, "start_ms.") {
			return "scenario.*.start_ms.*"
		}
	}
	return key
}

// kindKey is the key KnobKinds names key by: a pool's min_nr as
// min_nr_by_pool.*.
func kindKey(key string) string {
	if strings.HasPrefix(key, "allocator.mempool.min_nr_by_pool.") {
		return "allocator.mempool.min_nr_by_pool.*"
	}
	return key
}

// isSection reports whether key has keys below it.
func isSection(known map[string]bool, key string) bool {
	for k := range known {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// checkScalar checks a number given for a numeric knob: a whole number in
// range for an integer, a finite number for a float, named by file, line
// and key.
func checkScalar(file string, n *yaml.Node, key string, kind reflect.Kind) error {
	if key == "scenario.*.start_ms.*" || strings.Contains(key, ".start_ms.") {
		kind = reflect.Int64
	}
	if err := CheckNumber(key, n.Value, kind); err != nil {
		return Usagef("config %s:%d: %v", file, n.Line, err)
	}
	return nil
}

// CheckNumber checks the text of a numeric knob's value as a file or an
// environment variable gives it: for an integer kind, a whole number
// within the knob's bound; for a float, a finite number. Other kinds pass.
func CheckNumber(key, text string, kind reflect.Kind) error {
	switch kind {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		t := strings.ReplaceAll(text, "_", "")
		max, what := knobBound(key)
		if v, err := strconv.ParseInt(t, 0, 64); err == nil {
			if v > max || v < -max {
				return &KnobError{key, fmt.Sprintf("%s: out of range (at most %d, %s)", text, max, what)}
			}
			return nil
		}
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
			return &KnobError{key, fmt.Sprintf("%q: want a whole number", text)}
		}
		if math.Abs(f) > float64(max) {
			return &KnobError{key, fmt.Sprintf("%s: out of range (at most %d, %s)", text, max, what)}
		}
	case reflect.Float32, reflect.Float64:
		switch strings.ToLower(text) {
		case ".nan", ".inf", "+.inf", "-.inf":
			return &KnobError{key, fmt.Sprintf("%s: want a finite number", text)}
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return &KnobError{key, fmt.Sprintf("%q: want a number", text)}
		}
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
			return &KnobError{key, fmt.Sprintf("%s: want a finite number of magnitude at most 10^12", text)}
		}
	}
	return nil
}

// reserveKey accepts a pool name under allocator.mempool.min_nr_by_pool.
func reserveKey(key string) bool {
	if key == "allocator.mempool.min_nr_by_pool" {
		return true
	}
	name, ok := strings.CutPrefix(key, "allocator.mempool.min_nr_by_pool.")
	return ok && name != "" && !strings.Contains(name, ".")
}

// scenarioKey accepts the keys of a user-defined scenario: its workloads,
// start times, and any knob of the platform, allocator and workload
// sections.
func scenarioKey(key string, known map[string]bool) bool {
	parts := strings.SplitN(key, ".", 4)
	if parts[0] != "scenario" || len(parts) < 2 || parts[1] == "" {
		return false
	}
	if len(parts) == 2 {
		return true
	}
	switch parts[2] {
	case "workloads", "start_ms":
		return len(parts) == 3 || parts[2] == "start_ms" && !strings.Contains(parts[3], ".")
	case "platform", "allocator", "workload":
		if len(parts) == 3 {
			return true
		}
		inner := parts[2] + "." + parts[3]
		return known[inner] || reserveKey(inner)
	}
	return false
}

// siblings lists the known keys directly under prefix.
func siblings(known map[string]bool, prefix string) []string {
	var out []string
	for k := range known {
		rest := k
		if prefix != "" {
			if !strings.HasPrefix(k, prefix+".") {
				continue
			}
			rest = k[len(prefix)+1:]
		}
		if !strings.Contains(rest, ".") {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}

// locate adds the config file and line to a validation error when the
// offending key was set in that file: the deepest key whose name the
// message mentions.
func Locate(file string, err error) error {
	if file == "" || err == nil {
		return err
	}
	data, rerr := os.ReadFile(file)
	if rerr != nil {
		return err
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return err
	}
	msg := err.Error()
	bestLine, bestDepth, bestKey := 0, -1, ""
	var walk func(n *yaml.Node, prefix string, depth int)
	walk = func(n *yaml.Node, prefix string, depth int) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + key
			}
			if strings.Contains(msg, k.Value) && depth > bestDepth {
				bestLine, bestDepth, bestKey = k.Line, depth, key
			}
			walk(n.Content[i+1], key, depth+1)
		}
	}
	walk(doc.Content[0], "", 0)
	if bestLine == 0 {
		return Usagef("config %s: %v", file, err)
	}
	return Usagef("config %s:%d: %s: %v", file, bestLine, bestKey, err)
}

// SeedValues returns the run's seeds: seed_list when given, else 1..seeds.
func (c *Config) SeedValues() []uint64 {
	if len(c.SeedList) > 0 {
		return c.SeedList
	}
	out := make([]uint64, 0, max(c.Seeds, 0))
	for s := 1; s <= c.Seeds; s++ {
		out = append(out, uint64(s))
	}
	return out
}

// ParseSet reads a --set KEY=VALUE flag with the checks a config file's
// keys get: a known knob (not a section), a number within its bound where
// the knob is numeric. known holds the config's keys and sections.
func ParseSet(kv string, known map[string]bool) (key, value string, err error) {
	key, value, ok := strings.Cut(kv, "=")
	key = strings.ToLower(strings.TrimSpace(key))
	kinds := KnobKinds()
	kind, isKnob := kinds[kindKey(key)]
	switch {
	case !ok:
		return "", "", Usagef("--set %q: want KEY=VALUE", kv)
	case !isKnob || !known[key] && !strings.HasPrefix(key, "allocator.mempool.min_nr_by_pool."):
		return "", "", Usagef("--set %s: unknown key %q (a knob as in config.yaml, e.g. platform.x86.ram_mib)", kv, key)
	}
	if err := CheckNumber(key, value, kind); err != nil {
		return "", "", Usagef("--set %s: %v", kv, err)
	}
	return key, value, nil
}
