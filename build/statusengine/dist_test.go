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
		t.Fatal("ExecStart changed: update docs/operating.md (Deploying) and this test")
	}
	path := filepath.Join(t.TempDir(), "statusengine.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/coredns", self)), 0o644)
	cmd := exec.Command("systemd-analyze", "verify", path)
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The deploy snippets (docs/operating.md "Deploying" and the unit's header) install
// only files the repository has, and its edit of Corefile.example
// finds the line it changes.
func TestDeploySnippetFiles(t *testing.T) {
	var lines []string
	for _, f := range []string{"../../docs/operating.md", "../../dist/statusengine.service"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(string(b), "\n")...)
	}
	n := 0
	for _, l := range lines {
		cmd, _, _ := strings.Cut(strings.TrimLeft(l, "# "), " #") // without a trailing comment
		fields := strings.Fields(cmd)
		if len(fields) < 3 || fields[0] != "install" {
			continue
		}
		var args []string
		for i := 1; i < len(fields); i++ {
			switch {
			case fields[i] == "-m":
				i++
			case strings.HasPrefix(fields[i], "-"):
			default:
				args = append(args, fields[i])
			}
		}
		for _, src := range args[:len(args)-1] {
			n++
			if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
				t.Errorf("deploy snippet %q installs %s, which the repository does not have", strings.TrimSpace(l), src)
			}
		}
	}
	if n == 0 {
		t.Fatal("no install lines found")
	}
	ex, err := os.ReadFile("../../Corefile.example")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ex), "\nstatus.modsecurity.org:1053 {\n") {
		t.Error("Corefile.example has no line 'status.modsecurity.org:1053 {' for the sed of docs/operating.md to change")
	}
}
