// Package kernel is dmabench's kernel-tree back end: it reads a Linux
// source tree (a directory or a linux-source tarball), compiles the tree's
// own mm/dmapool.c and mm/mempool.c against dmabench's shim headers
// (kernel/shim, written for dmabench) into a shared library cached by a
// hash of everything that went into it, and loads that library through
// one small cgo layer (dlopen), so that the dmabench binary holds no
// kernel code. Without cgo, or without gcc or a tree, the back end says
// why it is unavailable and nothing else changes.
package kernel

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
)

// ErrUnavailable wraps every reason the back end cannot run here.
var ErrUnavailable = errors.New("kernel back end unavailable")

// The tree's files the back end uses, relative to its top.
const (
	fileMakefile = "Makefile"
	fileDMAPool  = "mm/dmapool.c"
	fileMempool  = "mm/mempool.c"
	fileMempoolH = "include/linux/mempool.h"
)

// Tree is what the back end read of a kernel tree.
type Tree struct {
	Path    string // as given
	Version string // from the top Makefile, e.g. "6.12.118"
	// The files, as the tree has them; Mempool and MempoolH are nil when
	// the tree has no mempool.
	DMAPool, Mempool, MempoolH []byte
	Features                   Features
}

// Features are what the shim must provide or the glue must call, read
// from the files.
type Features struct {
	// BlockList: dma_pool keeps one free list of blocks per pool (the
	// 2023 rework, 6.3+); otherwise a free chain per page (before).
	BlockList bool
	// CreateNode: dma_pool_create_node is the function, dma_pool_create
	// an inline wrapper (mainline).
	CreateNode bool
	// Noprof: allocation profiling's _noprof names (6.10+).
	Noprof bool
}

// Open reads the tree at path: a source directory, or a linux-source
// tarball (.tar, .tar.gz, .tar.xz, .tar.bz2), whose four files are
// extracted once with tar into cacheDir.
func Open(path, cacheDir string) (*Tree, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("kernel tree %s: %w", path, err)
	}
	top := path
	if !st.IsDir() {
		if top, err = extract(path, st, cacheDir); err != nil {
			return nil, err
		}
	}
	t := &Tree{Path: path}
	read := func(name string, need bool) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(top, name))
		if err != nil && (need || !errors.Is(err, fs.ErrNotExist)) {
			return nil, fmt.Errorf("kernel tree %s: %w", path, err)
		}
		return b, nil
	}
	mk, err := read(fileMakefile, true)
	if err != nil {
		return nil, err
	}
	if t.Version, err = version(mk); err != nil {
		return nil, fmt.Errorf("kernel tree %s: %s: %w", path, fileMakefile, err)
	}
	if t.DMAPool, err = read(fileDMAPool, true); err != nil {
		return nil, err
	}
	if t.Mempool, err = read(fileMempool, false); err != nil {
		return nil, err
	}
	if t.MempoolH, err = read(fileMempoolH, false); err != nil {
		return nil, err
	}
	if t.Mempool == nil || t.MempoolH == nil {
		t.Mempool, t.MempoolH = nil, nil
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("kernel tree %s (Linux %s): %w", path, t.Version, err)
	}
	return t, nil
}

var makeVar = regexp.MustCompile(`(?m)^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d*)\s*$`)

// version reads VERSION.PATCHLEVEL.SUBLEVEL from a top Makefile.
func version(mk []byte) (string, error) {
	v := map[string]string{}
	for _, m := range makeVar.FindAllSubmatch(mk, -1) {
		if _, seen := v[string(m[1])]; !seen {
			v[string(m[1])] = string(m[2])
		}
	}
	if v["VERSION"] == "" || v["PATCHLEVEL"] == "" {
		return "", errors.New("no VERSION and PATCHLEVEL: not a kernel tree's top Makefile")
	}
	s := v["VERSION"] + "." + v["PATCHLEVEL"]
	if v["SUBLEVEL"] != "" {
		s += "." + v["SUBLEVEL"]
	}
	return s, nil
}

// check reads the features from the files and refuses a tree the shim
// does not support, with the reason.
func (t *Tree) check() error {
	d := t.DMAPool
	switch {
	case bytes.Contains(d, []byte("struct dma_block {")):
		t.Features.BlockList = true
	case bytes.Contains(d, []byte("struct dma_page {")) && bytes.Contains(d, []byte("page->offset")):
	default:
		return errors.New("mm/dmapool.c has neither the per-page free chains (before 6.3) nor the block list (6.3 on) the shim knows")
	}
	t.Features.CreateNode = bytes.Contains(d, []byte("dma_pool_create_node("))
	if !t.Features.CreateNode && !bytes.Contains(d, []byte("dma_pool_create(const char *name")) {
		return errors.New("mm/dmapool.c defines no dma_pool_create")
	}
	if t.Mempool != nil {
		t.Features.Noprof = bytes.Contains(t.Mempool, []byte("mempool_alloc_noprof("))
		if !bytes.Contains(t.Mempool, []byte("io_schedule_timeout(")) {
			return errors.New("mm/mempool.c does not sleep in io_schedule_timeout, which the shim relies on to see a mempool wait")
		}
	}
	return nil
}

// extract takes the tree's files out of a tarball into cacheDir, once per
// tarball (path, size and modification time).
func extract(path string, st os.FileInfo, cacheDir string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d", abs, st.Size(), st.ModTime().UnixNano())))
	dir := filepath.Join(cacheDir, "src-"+hex.EncodeToString(h[:8]))
	if _, err := os.Stat(filepath.Join(dir, fileDMAPool)); err == nil {
		return dir, nil
	}
	if _, err := exec.LookPath("tar"); err != nil {
		return "", fmt.Errorf("%w: reading the tarball %s needs tar: %v", ErrUnavailable, path, err)
	}
	tmp, err := os.MkdirTemp(cacheDir, "src-*.tmp")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer os.RemoveAll(tmp)
	// One pass over the archive: the four files one folder down.
	args := []string{"-xf", path, "-C", tmp, "--wildcards", "--no-wildcards-match-slash"}
	for _, f := range []string{fileMakefile, fileDMAPool, fileMempool, fileMempoolH} {
		args = append(args, "*/"+f)
	}
	out, err := exec.Command("tar", args...).CombinedOutput()
	tops, _ := filepath.Glob(filepath.Join(tmp, "*", fileDMAPool))
	if len(tops) != 1 {
		return "", fmt.Errorf("kernel tree %s: the tarball holds no one %s (tar: %v %s)", path, fileDMAPool, err, bytes.TrimSpace(out))
	}
	top := filepath.Dir(filepath.Dir(tops[0]))
	if err := os.Rename(top, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, fileDMAPool)); serr != nil {
			return "", fmt.Errorf("kernel tree %s: %w", path, err)
		}
	}
	return dir, nil
}
