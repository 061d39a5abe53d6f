package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The systemd unit in dist/ passes systemd's own checker, with ExecStart
// pointed at a binary that exists here.
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not found (package systemd)")
	}
	unit, err := os.ReadFile("../../dist/statusengine.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/coredns -conf /etc/statusengine/Corefile") {
		t.Fatal("ExecStart changed: update README Deploying and this test")
	}
	path := filepath.Join(t.TempDir(), "statusengine.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/coredns", self)), 0o644)
	cmd := exec.Command("systemd-analyze", "verify", path)
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
