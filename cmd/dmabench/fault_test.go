package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// faultArgs is a 12-cell run whose cells take long enough for a signal
// to land in the middle of it.
var faultArgs = []string{"run", "-w", "usb-ehci,scsi,netrx", "-a", "dmapool,slab", "-p", "x86,sa1111", "-n", "300000", "-j", "1", "--progress", "plain"}

// startSelf runs this test binary as dmabench with args.
func startSelf(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), "RUN_TEST_BINARY_AS_DMABENCH=1")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &errb
}

// waitForCells waits until the run's journal holds at least n cells.
func waitForCells(t *testing.T, journal string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(journal)
		if bytes.Count(data, []byte("\n")) >= n+1 { // the header, then n cells
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d cells after 60 s", journal, n)
}

// TestInterruptedRunResumes: SIGINT in the middle of a 12-cell run leaves
// a valid results file with the finished cells, exit status 130 and the
// command that resumes; kill -9 leaves the journal; resuming either gives
// the modeled results of a run never interrupted.
func TestInterruptedRunResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs dmabench three times")
	}
	dir := t.TempDir()
	if code, _, errs := run(t, append(faultArgs, "--out", dir, "--name", "clean")...); code != 0 {
		t.Fatalf("clean run: exit %d: %s", code, errs)
	}
	want := modeled(t, filepath.Join(dir, "clean.json"))

	t.Run("SIGINT", func(t *testing.T) {
		cmd, errb := startSelf(t, append(faultArgs, "--out", dir, "--name", "int")...)
		waitForCells(t, filepath.Join(dir, "int.journal"), 3)
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Fatalf("interrupted run: %v, want exit 130\n%s", err, errb)
		}
		msg := errb.String()
		if !strings.Contains(msg, "cells saved in") || !strings.Contains(msg, "--resume --name int") {
			t.Fatalf("no word of what was saved or how to resume:\n%s", msg)
		}
		saved := readResults(t, filepath.Join(dir, "int.json"))
		if n := len(saved.Cells); n < 3 || n >= 12 {
			t.Fatalf("%d cells saved, want some but not all", n)
		}
		if _, err := os.Stat(filepath.Join(dir, "int.journal")); !os.IsNotExist(err) {
			t.Errorf("the journal stayed beside a results file that holds its cells")
		}
		// The printed command, as a user would paste it.
		line := msg[strings.LastIndex(msg, "resume with:")+len("resume with:"):]
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "dmabench" || fields[1] != "run" {
			t.Fatalf("resume command %q", line)
		}
		if code, _, errs := run(t, fields[1:]...); code != 0 {
			t.Fatalf("resume: exit %d: %s", code, errs)
		}
		if got := modeled(t, filepath.Join(dir, "int.json")); !bytes.Equal(got, want) {
			t.Fatal("an interrupted and resumed run differs from a clean run")
		}
	})

	t.Run("kill-9", func(t *testing.T) {
		cmd, _ := startSelf(t, append(faultArgs, "--out", dir, "--name", "kill")...)
		waitForCells(t, filepath.Join(dir, "kill.journal"), 2)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if _, err := os.Stat(filepath.Join(dir, "kill.json")); !os.IsNotExist(err) {
			t.Fatalf("a killed run left a results file")
		}
		code, _, errs := run(t, append(faultArgs, "--out", dir, "--name", "kill", "--resume")...)
		if code != 0 {
			t.Fatalf("resume after kill -9: exit %d: %s", code, errs)
		}
		if got := modeled(t, filepath.Join(dir, "kill.json")); !bytes.Equal(got, want) {
			t.Fatal("a killed and resumed run differs from a clean run")
		}
	})
}

// TestResumeRefusesAnotherConfig: resuming a run measured with other
// settings is bad input naming the keys that differ.
func TestResumeRefusesAnotherConfig(t *testing.T) {
	dir := t.TempDir()
	base := []string{"run", "-w", "usb-ehci", "-a", "dmapool", "-p", "x86", "--out", dir, "--name", "r"}
	if code, _, errs := run(t, append(base, "-n", "2000")...); code != 0 {
		t.Fatal(errs)
	}
	code, _, errs := run(t, append(base, "-n", "1000", "--resume")...)
	if code != 2 || !strings.Contains(errs, "events") || !strings.Contains(errs, "another configuration") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// More seeds of the same settings resume.
	if code, _, errs := run(t, append(base, "-n", "2000", "-s", "2", "--resume")...); code != 0 {
		t.Fatalf("more seeds: exit %d: %s", code, errs)
	}
	if n := len(readResults(t, filepath.Join(dir, "r.json")).Cells); n != 2 {
		t.Fatalf("%d cells after resuming with 2 seeds", n)
	}
}

// TestOneRunPerName: while a run holds a name, a second run of that name
// is refused, and writes nothing.
func TestOneRunPerName(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startSelf(t, append(faultArgs, "--out", dir, "--name", "busy")...)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitForCells(t, filepath.Join(dir, "busy.journal"), 0)
	code, _, errs := run(t, "run", "-w", "usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "1000", "--out", dir, "--name", "busy")
	if code != 2 || !strings.Contains(errs, "another dmabench run") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}
