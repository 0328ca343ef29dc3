package matrix

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ParseShard reads a shard spec: "i/N" (1 <= i <= N), or "N" with i taken
// from the index of an indexed job (JOB_COMPLETION_INDEX of a Kubernetes
// indexed Job, SLURM_ARRAY_TASK_ID; counted from 0), looked up by getenv.
// "" is the whole run, 1/1.
func ParseShard(spec string, getenv func(string) string) (i, n int, err error) {
	if spec == "" {
		return 1, 1, nil
	}
	is, ns, explicit := strings.Cut(spec, "/")
	if !explicit {
		ns = is
	}
	n, err = strconv.Atoi(ns)
	if err != nil || n < 1 {
		return 0, 0, fmt.Errorf("--shard %q: want i/N or N", spec)
	}
	if explicit {
		i, err = strconv.Atoi(is)
		if err != nil || i < 1 || i > n {
			return 0, 0, fmt.Errorf("--shard %q: want 1 <= i <= N", spec)
		}
		return i, n, nil
	}
	for _, env := range []string{"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"} {
		if v := getenv(env); v != "" {
			k, err := strconv.Atoi(v)
			if err != nil || k < 0 || k >= n {
				return 0, 0, fmt.Errorf("--shard %d: %s=%q is not an index in 0..%d", n, env, v, n-1)
			}
			return k + 1, n, nil
		}
	}
	return 0, 0, fmt.Errorf("--shard %d: no shard index: give i/%d or set JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID", n, n)
}

// Shard keeps every n-th cell starting at the i-th (from 1): a
// deterministic slice that spreads workloads evenly over shards.
func Shard(cells []Cell, i, n int) []Cell {
	var out []Cell
	for k, c := range cells {
		if k%n == i-1 {
			out = append(out, c)
		}
	}
	return out
}

// Order sorts results into the order of the full cell list all.
func Order(all []Cell, results []Result) []Result {
	pos := make(map[Cell]int, len(all))
	for i, c := range all {
		pos[c] = i
	}
	out := slices.Clone(results)
	slices.SortStableFunc(out, func(a, b Result) int { return pos[a.Cell] - pos[b.Cell] })
	return out
}
