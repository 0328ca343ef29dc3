package slab

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/dmabench/dmabench/dma"
)

// SlabinfoRow is one kmalloc cache of /proc/slabinfo: its object size,
// objects per slab and pages per slab.
type SlabinfoRow struct {
	Line              int
	Name              string
	Size, Objs, Pages int64
}

var kmallocCache = regexp.MustCompile(`^(dma-)?kmalloc(-rcl|-cg|-rnd-\d+)?-\d+k?$`)

// ParseSlabinfo reads the kmalloc caches of a /proc/slabinfo (version
// 2.x) snapshot; other caches are skipped. A malformed line is a
// *dma.InputError naming the file, line and column.
func ParseSlabinfo(file string, r io.Reader) ([]SlabinfoRow, error) {
	var rows []SlabinfoRow
	err := dma.ScanLines(file, r, func(n int, b []byte) error {
		if n == 1 {
			if !bytes.HasPrefix(b, []byte("slabinfo - version: 2.")) {
				return dma.Inputf(file, 1, "", "not /proc/slabinfo (want \"slabinfo - version: 2.x\")")
			}
			return nil
		}
		f := strings.Fields(string(b))
		if len(f) == 0 || f[0] == "#" || !kmallocCache.MatchString(f[0]) {
			return nil
		}
		if len(f) < 6 {
			return dma.Inputf(file, n, f[0], "want at least 6 columns")
		}
		var v [3]int64
		for i := range v {
			x, err := strconv.ParseInt(f[3+i], 10, 64)
			if err != nil || x <= 0 {
				return dma.Inputf(file, n, fmt.Sprintf("%s column %d", f[0], 4+i), "%q is not a positive number", f[3+i])
			}
			v[i] = x
		}
		rows = append(rows, SlabinfoRow{Line: n, Name: f[0], Size: v[0], Objs: v[1], Pages: v[2]})
		return nil
	})
	return rows, err
}

// CheckSlabinfo compares each row with SLUB's order rule for a machine of
// cpus CPUs and slub_max_order maxOrder: the same objects and pages per
// slab. It returns how many matched and a line for each that did not.
func CheckSlabinfo(file string, rows []SlabinfoRow, cpus, maxOrder int) (matched int, misses []string) {
	for _, r := range rows {
		o, objs := CalculateOrder(r.Size, cpus, maxOrder)
		if int64(objs) == r.Objs && int64(1)<<o == r.Pages {
			matched++
		} else {
			misses = append(misses, fmt.Sprintf("%s:%d: %s (%d bytes): kernel %d objects in %d pages, model %d in %d",
				file, r.Line, r.Name, r.Size, r.Objs, r.Pages, objs, 1<<o))
		}
	}
	return matched, misses
}

// BestCPUs returns the smallest power-of-two CPU count (1..8192) whose
// min_objects matches the most rows: a snapshot does not say how many
// CPUs its machine had.
func BestCPUs(rows []SlabinfoRow, maxOrder int) int {
	best, bestN := 1, -1
	for n := 1; n <= 8192; n *= 2 {
		if m, _ := CheckSlabinfo("", rows, n, maxOrder); m > bestN {
			best, bestN = n, m
		}
	}
	return best
}
