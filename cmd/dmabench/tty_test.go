package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary act as dmabench when a test runs it in a
// child process (under a pseudo-terminal, say).
func TestMain(m *testing.M) {
	if os.Getenv("RUN_TEST_BINARY_AS_DMABENCH") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestTerminalGetsABar(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to make a pseudo-terminal")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "typescript")
	cmdline := "stty cols 100 rows 30; RUN_TEST_BINARY_AS_DMABENCH=1 " + self + " run -w usb-ehci,scsi -a dmapool -p x86,sa1111 -n 200000 --out " + dir + " >/dev/null"
	cmd := exec.Command(scriptBin, "-qc", cmdline, out)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s", err, b)
	}
	data, _ := os.ReadFile(out)
	if !strings.Contains(string(data), "\x1b[") || !strings.Contains(string(data), "cells 4/4 [") {
		t.Fatalf("no bar on a terminal:\n%q", data)
	}
}
