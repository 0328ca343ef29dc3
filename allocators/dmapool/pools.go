package dmapool

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dmabench/dmabench/dma"
)

// PoolsLine is one pool of a device's sysfs `pools` file, as
// mm/dmapool.c prints it: the pool's name, then blocks in use, total
// blocks, block size and pages.
type PoolsLine struct {
	Line                      int
	Name                      string
	InUse, Total, Size, Pages int64
}

// ParsePools reads a `pools` file (its "poolinfo" header is skipped). A
// line that is not a name and four counts is an *dma.InputError naming
// the file, line and field.
func ParsePools(file string, r io.Reader) ([]PoolsLine, error) {
	var out []PoolsLine
	err := dma.ScanLines(file, r, func(n int, b []byte) error {
		f := strings.Fields(string(b))
		if len(f) == 0 || (n == 1 && bytes.HasPrefix(b, []byte("poolinfo"))) {
			return nil
		}
		if len(f) < 5 {
			return dma.Inputf(file, n, "", "want a name and four numbers, got %q", b)
		}
		var nums [4]int64
		for i := range nums {
			v, err := strconv.ParseInt(f[len(f)-4+i], 10, 64)
			if err != nil || v < 0 {
				return dma.Inputf(file, n, fmt.Sprintf("field %d", len(f)-3+i), "%q is not a count", f[len(f)-4+i])
			}
			nums[i] = v
		}
		out = append(out, PoolsLine{Line: n, Name: strings.Join(f[:len(f)-4], " "),
			InUse: nums[0], Total: nums[1], Size: nums[2], Pages: nums[3]})
		return nil
	})
	return out, err
}

// CheckPools compares each pool's total blocks with its pages times the
// blocks per page this model lays out for its block size (align and
// boundary as the pools file cannot tell: the defaults). It returns how
// many matched and a line for each that did not.
func CheckPools(file string, lines []PoolsLine) (matched int, misses []string) {
	for _, p := range lines {
		l, err := NewLayout(p.Size, 0, 0)
		if err != nil {
			misses = append(misses, fmt.Sprintf("%s:%d: %s: block size %d: %v", file, p.Line, p.Name, p.Size, err))
			continue
		}
		if want := p.Pages * int64(l.BlocksPerPage()); want == p.Total {
			matched++
		} else {
			misses = append(misses, fmt.Sprintf("%s:%d: %s: %d pages x %d per page = %d blocks, kernel has %d", file, p.Line, p.Name, p.Pages, l.BlocksPerPage(), want, p.Total))
		}
	}
	return matched, misses
}
