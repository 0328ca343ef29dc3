// Package journal keeps a named run's state on disk so that no finished
// cell is lost: a lock that keeps two runs from writing one name, and a
// journal of finished cells appended and synced one by one, from which a
// run that was killed, interrupted or stopped by a full disk resumes.
//
// A run NAME in folder DIR owns DIR/.NAME.lock (held with flock while the
// run lives, so a killed run leaves no stale lock; the empty file stays,
// since removing it would let a third run lock a new file while a second
// waits on the old) and DIR/NAME.journal:
// a header line with the configuration, then one line per finished cell,
// each a JSON cells.Result. When the run has written its results file,
// the journal goes.
package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dmabench/dmabench/cells"
)

// Schema names the journal's format.
const Schema = "dmabench/journal/v1"

// ErrLocked: another run holds the name.
var ErrLocked = errors.New("another dmabench run is writing this name")

// MismatchError: what a resumed run found was measured with another
// configuration.
type MismatchError struct {
	File string
	Keys []string
}

func (e *MismatchError) Error() string {
	text, _ := cells.DiffKeys(e.Keys)
	return fmt.Sprintf("%s was measured with another configuration: %s differ (resume with the same settings, or choose another --name)", e.File, text)
}

// Run is the on-disk state of one named run. Add is safe from several
// goroutines.
type Run struct {
	dir, name string
	madeDir   bool // Open made dir
	lock      *os.File
	mu        sync.Mutex
	j         *os.File
	synced    time.Time
	// Added counts the cells appended by this process.
	Added int
}

// SyncEvery bounds how long a cell Add wrote may wait for an fsync. A
// line is written to the file at once, so a killed process loses nothing
// it added; the sync is what a machine that loses power needs, and one
// per cell costs more than a short cell (3.5 ms each here, against cells
// of 20 ms in the default run).
const SyncEvery = 200 * time.Millisecond

// Path returns dir/name+ext.
func (r *Run) Path(ext string) string { return filepath.Join(r.dir, r.name+ext) }

// Open makes dir if need be, checks that a file can be written in it,
// and takes the run's lock: a second run of the same name gets ErrLocked
// until the first ends, however it ends.
func Open(dir, name string) (*Run, error) {
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	probe, err := os.CreateTemp(dir, ".dmabench-probe-*")
	if err != nil {
		return nil, fmt.Errorf("output folder %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	r := &Run{dir: dir, name: name, madeDir: os.IsNotExist(statErr)}
	lockPath := filepath.Join(dir, "."+name+".lock")
	lf, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|syscallNoFollow, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(lf); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%s: %w", lockPath, ErrLocked)
	}
	r.lock = lf
	return r, nil
}

// header is the journal's first line.
type header struct {
	Schema string          `json:"schema"`
	Config json.RawMessage `json:"config"`
}

// Resume returns the cells earlier runs of this name finished: those of
// its results file and of its journal (a cell in both counts once). Each
// must have been measured with config, else a *MismatchError names the
// keys that differ. A journal line cut short by a kill is ignored.
func (r *Run) Resume(config any) ([]cells.Result, error) {
	var out []cells.Result
	seen := map[cells.Cell]bool{}
	add := func(rs []cells.Result) {
		for _, c := range rs {
			if !seen[c.Cell] {
				seen[c.Cell] = true
				out = append(out, c)
			}
		}
	}
	if data, err := os.ReadFile(r.Path(".json")); err == nil {
		doc, err := cells.ParseDocument(r.Path(".json"), data)
		if err != nil {
			return nil, err
		}
		if d := cells.ConfigDiff(doc.Config, config); len(d) > 0 {
			return nil, &MismatchError{File: r.Path(".json"), Keys: d}
		}
		add(doc.Cells)
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	data, err := os.ReadFile(r.Path(".journal"))
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	lines := bytes.Split(data, []byte("\n"))
	var h header
	if err := json.Unmarshal(lines[0], &h); err != nil || h.Schema != Schema {
		return nil, fmt.Errorf("%s:1: not a dmabench journal (want schema %q)", r.Path(".journal"), Schema)
	}
	if d := cells.ConfigDiff(h.Config, config); len(d) > 0 {
		return nil, &MismatchError{File: r.Path(".journal"), Keys: d}
	}
	var rs []cells.Result
	for _, l := range lines[1:] {
		var c cells.Result
		if len(l) == 0 || json.Unmarshal(l, &c) != nil || c.Metrics == nil && c.Refused == "" {
			continue // the last line, cut short by a kill
		}
		rs = append(rs, c)
	}
	add(rs)
	return out, nil
}

// Begin opens the journal for appending, writing its header first when
// there is none yet (config is the run's, as its results file will hold
// it). A header that is there already was checked by Resume.
func (r *Run) Begin(config any) error {
	f, err := os.OpenFile(r.Path(".journal"), os.O_RDWR|os.O_CREATE|os.O_APPEND|syscallNoFollow, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if st.Size() > 0 {
		if err := terminate(f, st.Size()); err != nil {
			f.Close()
			return err
		}
	} else {
		cfg, err := json.Marshal(config)
		if err != nil {
			f.Close()
			return err
		}
		line, _ := json.Marshal(header{Schema: Schema, Config: cfg})
		if err := writeSync(f, line); err != nil {
			f.Close()
			return err
		}
	}
	r.j = f
	return nil
}

// terminate ends a journal whose last line a kill cut short with a
// newline, so the next cell starts a line of its own.
func terminate(f *os.File, size int64) error {
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return err
	}
	if last[0] != '\n' {
		_, err := f.Write([]byte("\n"))
		return err
	}
	return nil
}

// writeLine writes line and a newline in one write.
func writeLine(f *os.File, line []byte) error {
	_, err := f.Write(append(line, '\n'))
	return err
}

// writeSync writes line and a newline, and syncs.
func writeSync(f *os.File, line []byte) error {
	if err := writeLine(f, line); err != nil {
		return err
	}
	return f.Sync()
}

// Add appends a finished cell to the journal, in one write, and syncs
// the journal to disk when the last sync is SyncEvery old.
func (r *Run) Add(res *cells.Result) error {
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err = writeLine(r.j, line)
	if now := time.Now(); err == nil && now.Sub(r.synced) >= SyncEvery {
		err, r.synced = r.j.Sync(), now
	}
	if err != nil {
		return fmt.Errorf("journal %s: %w", r.Path(".journal"), err)
	}
	r.Added++
	return nil
}

// Finish ends a run whose results file holds every cell of the journal:
// the journal goes, and the lock is released.
func (r *Run) Finish() error {
	var err error
	if r.j != nil {
		r.j.Close()
		r.j = nil
		err = os.Remove(r.Path(".journal"))
	}
	r.Close()
	return err
}

// Abandon ends a run that failed on bad input before it finished a cell:
// it leaves no file behind (the journal, the lock, and the folder if Open
// made it and it is empty).
func (r *Run) Abandon() {
	r.Close()
	os.Remove(r.Path(".journal"))
	os.Remove(filepath.Join(r.dir, "."+r.name+".lock"))
	if r.madeDir {
		os.Remove(r.dir)
	}
}

// Close releases the lock and leaves the journal, synced, for a later
// --resume.
func (r *Run) Close() {
	if r.j != nil {
		r.j.Sync()
		r.j.Close()
		r.j = nil
	}
	if r.lock != nil {
		r.lock.Close()
		r.lock = nil
	}
}
