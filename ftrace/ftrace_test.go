package ftrace

import (
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		line     string
		task     string
		pid, cpu int
		flags    string
		ts       int64
		event    string
		bytesReq int64
	}{
		{"            init-1     [000] .N..     0.150000: kmalloc: call_site=c104dd2f ptr=c147dd20 bytes_req=29 bytes_alloc=32 gfp_flags=GFP_KERNEL",
			"init", 1, 0, ".N..", 150_000_000, "kmalloc", 29},
		{" irq/35-firewire-273881 [002] 373149.138580: kmalloc: (fw_core_handle_request+0x7b) call_site=fw_core_handle_request+0x7b ptr=0xffff99e93f007300 bytes_req=155 bytes_alloc=192 gfp_flags=GFP_ATOMIC",
			"irq/35-firewire", 273881, 2, "", 373149_138580_000, "kmalloc", 155},
		{"   (udev-worker)-532     [010] .....     4.878079: dma_alloc: 0000:c2:00.0 dma_addr=fe980000 size=524288 virt_addr=000000006cadbcb1 flags=GFP_KERNEL attrs=",
			"(udev-worker)", 532, 10, ".....", 4_878_079_000, "dma_alloc", -1},
		{"kworker/u64:0-12 [011] 327.747763: dma_free: 0000:c2:00.0 dma_addr=fe980000 size=524288",
			"kworker/u64:0", 12, 11, "", 327_747_763_000, "dma_free", -1},
		{"Web Content-4242 ( 4200) [001] d..1. 10.5: kfree: call_site=x ptr=0000000000000000",
			"Web Content", 4242, 1, "d..1.", 10_500_000_000, "kfree", -1},
	}
	for _, tc := range cases {
		l, err := Parse([]byte(tc.line))
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if string(l.Task) != tc.task || l.PID != tc.pid || l.CPU != tc.cpu || string(l.Flags) != tc.flags || l.TS != tc.ts || string(l.Event) != tc.event {
			t.Errorf("%q: task %q pid %d cpu %d flags %q ts %d event %q", tc.line, l.Task, l.PID, l.CPU, l.Flags, l.TS, l.Event)
		}
		if tc.bytesReq >= 0 {
			if n, err := Int(l.Body, "bytes_req"); err != nil || n != tc.bytesReq {
				t.Errorf("%q: bytes_req %d %v", tc.line, n, err)
			}
		}
	}
	for _, bad := range []string{"", "# tracer: nop", "no cpu field here", "a-1 [0] notatime: x:", "task-x [000] 1.0: ev: a", "t-1 [000] 1.0:"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestField(t *testing.T) {
	body := []byte("call_site=x ptr=0x10 bytes_req=8 nodemask=3 node=1 attrs=")
	if v, ok := Field(body, "node"); !ok || string(v) != "1" {
		t.Fatalf("node=%q", v)
	}
	if v, ok := Field(body, "attrs"); !ok || len(v) != 0 {
		t.Fatalf("attrs=%q %v", v, ok)
	}
	if _, ok := Field(body, "size"); ok {
		t.Fatal("size found")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("            init-1     [000] .N..     0.150000: kmalloc: call_site=c104dd2f ptr=c147dd20 bytes_req=29"))
	f.Add([]byte(" irq/35-firewire-273881 [002] 373149.138580: kmalloc: (x) bytes_req=155"))
	f.Add([]byte("a b-c (1) [9] 1.1: e: k=v"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err != nil {
			return
		}
		if l.PID < 0 || l.CPU < 0 || l.TS < 0 || len(l.Event) == 0 {
			t.Fatalf("bad parse %+v", l)
		}
		Int(l.Body, "bytes_req")
	})
}
