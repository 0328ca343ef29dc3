package ftrace

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/workloads/trace"
)

// importText imports lines and reads the trace back.
func importText(t *testing.T, text string) (Stats, []dma.Event) {
	t.Helper()
	var out bytes.Buffer
	st, err := Import("in", strings.NewReader(text), trace.NewWriter(&out), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := trace.NewReader("out", bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var evs []dma.Event
	for {
		var e dma.Event
		if err := r.Next(&e); err != nil {
			break
		}
		evs = append(evs, e)
	}
	return st, evs
}

// TestLineShapes: every shape the kernel's trace output has had imports
// the same event: with or without the TASK-PID column, "<...>" tasks, a
// tgid, flag columns of any width or none, trace-cmd's layout.
func TestLineShapes(t *testing.T) {
	body := "kmalloc: call_site=c104deff ptr=f5e0c5c0 bytes_req=24 bytes_alloc=32 gfp_flags=GFP_KERNEL"
	for _, head := range []string{
		"bash-1234  [001] d..1   808.188897: ",
		"bash-1234  [001] d..1.  808.188897: ",
		"bash-1234  [001]   808.188897: ",
		"           [002] ....   808.188897: ",
		"[002] 808.188897: ",
		"<...>-1234 [001] ....  808.188897: ",
		"kworker/0:1-42 (   42) [000] ....  808.188897: ",
		"my task-name-7 [003] d.h2 808.188897: ",
	} {
		st, evs := importText(t, head+body+"\n")
		if st.Converted["kmalloc"] != 1 || len(evs) != 1 || evs[0].Size != 24 || evs[0].Kernel != 32 {
			t.Errorf("%q: converted %v, skipped %v, events %d", head, st.Converted, st.Skipped, len(evs))
		}
	}
}

// TestSkippedLinesByReason: function tracer, stack trace, trace_printk and
// corrupted lines are skipped and counted each under its own reason.
func TestSkippedLinesByReason(t *testing.T) {
	text := "bash-1 [000] .... 1.000001: do_sys_open <-SyS_open\n" +
		" => kmalloc_trace\n" +
		" => __kmalloc\n" +
		"bash-1 [000] .... 1.000002: <stack trace>\n" +
		"bash-1 [000] .... 1.000003: my_driver_probe: hello from the driver\n" +
		"bash-1 [000] .... 1.000004: bprint: foo: bar\n" +
		"bash-1 [000] .... 1.000005: sched_switch: prev_comm=a prev_pid=1\n" +
		"ptr=f5e0c5c0 bytes_req=24 bytes_alloc=32\n" +
		"bash-1 [000] .... 1.000006: kmalloc: call_site=c1 ptr=f0 bytes_req=24 bytes_alloc=32 gfp_flags=GFP_KERNEL\n"
	st, _ := importText(t, text)
	for reason, n := range map[string]int{
		"function tracer line": 1, "stack trace line": 3, "trace_printk line": 2,
		"sched_switch: event not modeled": 1, "not an ftrace event line (wrapped or corrupted)": 1,
	} {
		if st.Skipped[reason] != n {
			t.Errorf("%q: %d, want %d (all: %v)", reason, st.Skipped[reason], n, st.Skipped)
		}
	}
}

// TestNothingToImportIsRefused: a file with no ftrace event line (a log,
// trace-cmd's binary trace.dat, an empty file), or whose events are none
// dmabench converts, is refused naming the file and line and why, rather
// than written as a trace that replays nothing.
func TestNothingToImportIsRefused(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"", "in:1: the file is empty"},
		{"root:x:0:0:root:/root:/bin/bash\nhello\n", `in:1: no ftrace event line in 2 lines (the first: "root:x:0:0:root:/root:/bin/bash")`},
		{"# tracer: nop\nbash-1 [000] .... 1.000005: sched_switch: prev_comm=a prev_pid=1\nbash-1 [000] .... 1.000006: sched_switch: prev_comm=b prev_pid=1\n",
			"in:2: none of its 2 events is one dmabench converts (kmem, dma, iommu, swiotlb: trace-cmd record -e kmem -e dma -e iommu); skipped: sched_switch: event not modeled (2)"},
	} {
		var out bytes.Buffer
		_, err := Import("in", strings.NewReader(tc.text), trace.NewWriter(&out), nil)
		var ie *dma.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an input error %q", tc.text, err, tc.want)
		}
	}
}

// TestImportFidelity: older event names free pages; a failed page
// allocation is not a success; an allocation at a live pointer implies the
// untraced free; two caches of one size stay two pools; time going back
// is counted.
func TestImportFidelity(t *testing.T) {
	text := "a-1 [000] .... 1.000001: mm_page_alloc: page=c1000000 pfn=4096 order=0 migratetype=0 gfp_flags=GFP_KERNEL\n" +
		"a-1 [000] .... 1.000002: mm_page_free_direct: page=c1000000 pfn=4096 order=0\n" +
		"a-1 [000] .... 1.000003: mm_page_alloc: page=c1000000 pfn=4096 order=0 migratetype=0 gfp_flags=GFP_KERNEL\n" +
		"a-1 [000] .... 1.000004: mm_pagevec_free: page=c1000000 pfn=4096 order=0 cold=0\n" +
		"a-1 [000] .... 1.000005: mm_page_alloc: page=  (null) pfn=0 order=3 migratetype=0 gfp_flags=GFP_ATOMIC\n" +
		"a-1 [000] .... 1.000006: kmalloc: call_site=c1 ptr=f0 bytes_req=24 bytes_alloc=32 gfp_flags=GFP_KERNEL\n" +
		"a-1 [000] .... 1.000007: kmalloc: call_site=c1 ptr=f0 bytes_req=20 bytes_alloc=32 gfp_flags=GFP_KERNEL\n" +
		"a-1 [000] .... 1.000008: kmem_cache_alloc: call_site=c2 ptr=e0 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL\n" +
		"a-1 [000] .... 1.000009: kmem_cache_alloc: call_site=c3 ptr=e8 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL\n" +
		"a-1 [001] .... 1.000001: kfree: call_site=c1 ptr=f0\n"
	st, evs := importText(t, text)
	if st.Converted["mm_page_free_direct"] != 1 || st.Converted["mm_pagevec_free"] != 1 {
		t.Errorf("older page frees: %v", st.Converted)
	}
	failed := 0
	for _, e := range evs {
		if e.Kind == dma.Alloc && e.Kernel == dma.KernelFailed && e.Size == 8*dma.PageSize {
			failed++
		}
	}
	if st.FailedAllocs != 1 || failed != 1 || st.Converted["mm_page_alloc"] != 3 {
		t.Errorf("failed page allocation: %d written as failed, converted %v skipped %v", failed, st.Converted, st.Skipped)
	}
	if st.ImpliedFrees != 1 {
		t.Errorf("implied frees %d, want 1", st.ImpliedFrees)
	}
	pools := 0
	for _, e := range evs {
		if e.Kind == dma.PoolCreate {
			pools++
		}
	}
	if pools != 2 {
		t.Errorf("%d pools for two caches of one size", pools)
	}
	if st.Backwards != 1 {
		t.Errorf("time backwards %d, want 1", st.Backwards)
	}
	// The replay sees the implied free: nothing is left live but what the
	// capture left.
	live := map[dma.ID]bool{}
	for _, e := range evs {
		switch e.Kind {
		case dma.Alloc:
			if e.Kernel == dma.KernelFailed {
				continue // never live
			}
			if live[e.ID] {
				t.Fatalf("id %d allocated while live", e.ID)
			}
			live[e.ID] = true
		case dma.Free:
			delete(live, e.ID)
		}
	}
}

// TestKmallocsSkipsAsImportDoes: validate's reading (Kmallocs) skips each
// line import skips, under the same reason and count.
func TestKmallocsSkipsAsImportDoes(t *testing.T) {
	text := `  a-1 [000] ....  1.000000: kmalloc: call_site=c1 ptr=c0001000 bytes_req=20 bytes_alloc=32 gfp_flags=GFP_KERNEL
  a-1 [000] ....  1.000001: kmalloc: call_site=c1 ptr=c0001
  a-1 [000] ....  1.000002: kmalloc_node: call_site=c1 ptr=c0002000 bytes_req=x bytes_alloc=32 gfp_flags=GFP_KERNEL node=0
  a-1 [000] ....  1.000003: kmalloc: call_site=c1 ptr=  (null) bytes_req=20 bytes_alloc=32 gfp_flags=GFP_ATOMIC
  a-1 [000] ....  1.000004: kmalloc: call_site=c1 ptr=c0003000 bytes_req=40 bytes_alloc=64 gfp_flags=GFP_KERNEL
 => __kmalloc+0x1c/0x30
          bash-1 [000] ....  1.000005: do_sys_open <-sys_open
`
	st, _ := importText(t, text)
	skipped, err := Kmallocs("in", strings.NewReader(text), func(int, int64, int64) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) < 4 {
		t.Fatalf("Kmallocs skipped %v: want every kind of bad line", skipped)
	}
	for k, n := range skipped {
		if strings.Contains(k, "failed allocation") {
			if st.FailedAllocs != n {
				t.Errorf("%q: Kmallocs skipped %d, Import wrote %d as failed", k, n, st.FailedAllocs)
			}
			continue
		}
		if st.Skipped[k] != n {
			t.Errorf("%q: Kmallocs skipped %d, Import %d", k, n, st.Skipped[k])
		}
	}
}
