package kernel

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
)

//go:embed shim/shim.h shim/glue.c
var shim embed.FS

// cflags are the compiler's flags; the shim's and the features' -D
// follow.
var cflags = []string{"-O2", "-fno-strict-aliasing", "-fPIC", "-shared", "-w"}

var includeLine = regexp.MustCompile(`(?m)^\s*#\s*include\s*<([^>]+)>`)

// CacheDir is where the back end keeps extracted trees and built
// libraries: DMABENCH_KERNEL_CACHE, or dmabench/kernel in the user's
// cache folder.
func CacheDir() (string, error) {
	if d := os.Getenv("DMABENCH_KERNEL_CACHE"); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no cache folder (set DMABENCH_KERNEL_CACHE): %v", ErrUnavailable, err)
	}
	d := filepath.Join(base, "dmabench", "kernel")
	return d, os.MkdirAll(d, 0o755)
}

// Build compiles the tree's files with the shim into a shared library in
// cacheDir, named by a hash of the sources, the shim, the flags and the
// compiler's version, and returns its path; a library already built from
// the same inputs is reused.
func Build(t *Tree, cacheDir string) (string, error) {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		return "", fmt.Errorf("%w: no C compiler (%s): %v", ErrUnavailable, cc, err)
	}
	ccVersion, err := exec.Command(cc, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s --version: %v", ErrUnavailable, cc, err)
	}
	shimH, _ := shim.ReadFile("shim/shim.h")
	glue, _ := shim.ReadFile("shim/glue.c")
	flags := slices.Clone(cflags)
	if t.Features.CreateNode {
		flags = append(flags, "-DDMABENCH_CREATE_NODE")
	}
	if t.Mempool != nil {
		flags = append(flags, "-DDMABENCH_MEMPOOL")
	}
	h := sha256.New()
	for _, b := range [][]byte{t.DMAPool, t.Mempool, t.MempoolH, shimH, glue, ccVersion, []byte(fmt.Sprint(flags))} {
		fmt.Fprintf(h, "%d\x00", len(b))
		h.Write(b)
	}
	lib := filepath.Join(cacheDir, "lib-"+hex.EncodeToString(h.Sum(nil)[:12])+".so")
	if _, err := os.Stat(lib); err == nil {
		return lib, nil
	}
	dir, err := os.MkdirTemp(cacheDir, "build-*")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer os.RemoveAll(dir)
	// The files as the tree has them; every <...> header they include is
	// an empty stand-in (the shim, force-included, has what they need),
	// but the tree's own mempool.h, whose mempool_t the code uses.
	files := map[string][]byte{"shim.h": shimH, "glue.c": glue, "mm/dmapool.c": t.DMAPool}
	srcs := []string{"mm/dmapool.c"}
	headers := includeLine.FindAllSubmatch(t.DMAPool, -1)
	if t.Mempool != nil {
		files["mm/mempool.c"] = t.Mempool
		files["mm/slab.h"] = nil // mempool.c's "slab.h": mm's own, not needed
		srcs = append(srcs, "mm/mempool.c")
		headers = append(headers, includeLine.FindAllSubmatch(t.Mempool, -1)...)
		headers = append(headers, includeLine.FindAllSubmatch(t.MempoolH, -1)...)
	}
	for _, m := range headers {
		files[filepath.Join("include", string(m[1]))] = nil
	}
	if t.Mempool != nil {
		files["include/linux/mempool.h"] = t.MempoolH
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	out := filepath.Join(dir, "lib.so")
	args := append(slices.Clone(flags), "-include", filepath.Join(dir, "shim.h"), "-I", filepath.Join(dir, "include"))
	for _, s := range srcs {
		args = append(args, filepath.Join(dir, s))
	}
	args = append(args, filepath.Join(dir, "glue.c"), "-o", out)
	cmd := exec.Command(cc, args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kernel tree %s (Linux %s) does not build with dmabench's shim: %v\n%s", t.Path, t.Version, err, bytes.TrimSpace(msg))
	}
	// Into place by rename: a library in the cache is always whole.
	if err := os.Rename(out, lib); err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return lib, nil
}
