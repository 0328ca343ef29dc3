package trace

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"sync"

	"github.com/dmabench/dmabench/dma"
)

// Opener opens trace files for replay. It remembers the threads of each
// file it has scanned (by path, size and modification time), so that the
// cells of one run that replay the same trace read it through for them
// once. The zero value is ready to use; it is safe for concurrent use.
type Opener struct {
	// Limit, when above 0, is the events a replay serves at most: the
	// scan for threads reads no further than such a replay can.
	Limit   int64
	mu      sync.Mutex
	threads map[fileKey][]int
}

type fileKey struct {
	path    string
	size    int64
	modTime int64
}

// Open opens path for replay: as one source per thread when its events
// come from more than one (NewSplit), so that a request sleeping on one
// thread does not hold back the others. The file is closed when the
// source ends. An error opening the file is returned as it is (an
// *os.PathError); a malformed header as an *Error.
func (o *Opener) Open(path string) (dma.Source, error) {
	sh, err := o.OpenShared(path)
	if err != nil {
		return nil, err
	}
	return sh.Source(), nil
}

// OpenShared opens path for the replays that share one decoding of it
// (Shared.Source for each); errors as Open's.
func (o *Opener) OpenShared(path string) (*Shared, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	nums, err := o.scan(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := NewReader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return NewShared(r, nums, func() { f.Close() }), nil
}

// scan returns the threads of the trace f holds (ScanThreads) and rewinds
// f. A trace the scan cannot read replays as one stream, whose reader
// names the file and line that is wrong.
func (o *Opener) scan(f *os.File) ([]int, error) {
	var key fileKey
	if fi, err := f.Stat(); err == nil {
		key = fileKey{f.Name(), fi.Size(), fi.ModTime().UnixNano()}
		o.mu.Lock()
		nums, ok := o.threads[key]
		o.mu.Unlock()
		if ok {
			return nums, nil
		}
	}
	nums, _ := ScanThreadsUpTo(f, o.Limit)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if key.path != "" {
		o.mu.Lock()
		if o.threads == nil {
			o.threads = map[fileKey][]int{}
		}
		o.threads[key] = nums
		o.mu.Unlock()
	}
	return nums, nil
}

// OpenFile opens a text file a user gave (a trace, a capture, a pools or
// slabinfo snapshot) for reading, through gzip when it is compressed.
func OpenFile(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br, err := Uncompressed(f)
	if err != nil {
		f.Close()
		return nil, &dma.InputError{File: path, Line: 1, Err: err}
	}
	return struct {
		io.Reader
		io.Closer
	}{br, f}, nil
}

// Checksum returns "sha256:" and the hex SHA-256 of the file at path: what
// a results file records of each trace it replayed.
func Checksum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// ContentSize returns the bytes OpenFile will read from path: its size,
// or for a gzip file the size its footer records (modulo 4 GiB, as gzip
// keeps it; at least the compressed size); 0 when it cannot tell.
func ContentSize(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	var magic [2]byte
	if n, _ := f.ReadAt(magic[:], 0); n < 2 || magic[0] != 0x1f || magic[1] != 0x8b || fi.Size() < 8 {
		return fi.Size()
	}
	var foot [4]byte
	if _, err := f.ReadAt(foot[:], fi.Size()-4); err != nil {
		return fi.Size()
	}
	isize := int64(binary.LittleEndian.Uint32(foot[:]))
	for isize < fi.Size() {
		isize += 1 << 32
	}
	return isize
}
