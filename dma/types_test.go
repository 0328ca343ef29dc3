package dma

import "testing"

func TestOrder(t *testing.T) {
	for _, tc := range []struct {
		size int64
		want int
	}{{1, 0}, {4096, 0}, {4097, 1}, {8192, 1}, {8193, 2}, {89024, 5}, {608768, 8}, {4 << 20, 10}} {
		if got := Order(tc.size); got != tc.want {
			t.Errorf("Order(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

func TestGFPRoundTrip(t *testing.T) {
	for _, g := range []GFP{GFPKernel, GFPAtomic, GFPNoIO, GFPNoFS, GFPKernel | GFPDMA, GFPAtomic | GFPNoWarn | GFPZero, 0} {
		back, err := ParseGFP(g.String())
		if err != nil || back != g {
			t.Errorf("%s: parsed back as %s (%v)", g, back, err)
		}
	}
	for _, s := range []string{"GFP_ATOMIC|__GFP_NOWARN", "GFP_ATOMIC|GFP_NOWARN"} {
		if g, err := ParseGFP(s); err != nil || g != GFPAtomic|GFPNoWarn {
			t.Errorf("ParseGFP(%q) = %s, %v", s, g, err)
		}
	}
	if _, err := ParseGFP("GFP_WHATEVER"); err == nil {
		t.Error("unknown flag accepted")
	}
	if !GFPAtomic.Atomic() || GFPKernel.Atomic() || !GFPNoIO.CanSleep() {
		t.Error("sleep rules")
	}
}
