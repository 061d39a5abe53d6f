package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/internal/servertest"
)

// buildBinary builds this command as go build does for an operator, with
// the version control information of the checkout stamped in: -buildvcs=true
// where git is installed (Go's default, auto, does the same unless GOFLAGS
// turns it off, as on the development machine), else Go's default.
func buildBinary(t *testing.T) (bin, root string, git string) {
	t.Helper()
	root, err := servertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	bin = filepath.Join(t.TempDir(), "coredns")
	args := []string{"-C", root, "build", "-o", bin}
	if git, _ = exec.LookPath("git"); git != "" {
		if err := exec.Command(git, "-C", root, "rev-parse", "HEAD").Run(); err != nil {
			git = "" // not a checkout
		} else {
			args = append(args, "-buildvcs=true")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, append(args, "./build/coredns")...)
	cmd.WaitDelay = 2 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s ./build/coredns: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, root, git
}

func output(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// coredns -version names the statusengine build: its version and the
// commit it was built from; coredns -plugins lists the plugin.
func TestVersionAndPlugins(t *testing.T) {
	bin, root, git := buildBinary(t)
	out := output(t, bin, "-version")
	t.Logf("coredns -version:\n%s", out)
	if !strings.HasPrefix(out, "CoreDNS-1.15.0\n") || !strings.Contains(out, ", statusengine ") {
		t.Errorf("coredns -version = %q, want CoreDNS's version and the statusengine build", out)
	}
	if git == "" {
		t.Logf("no git checkout at %s: the binary must say the commit is unknown", root)
		if !strings.Contains(out, "commit unknown") {
			t.Errorf("coredns -version = %q, want \"commit unknown\"", out)
		}
	} else {
		rev, err := exec.Command(git, "-C", root, "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := "commit " + strings.TrimSpace(string(rev))[:12]; !strings.Contains(out, want) {
			t.Errorf("coredns -version = %q, want %q (HEAD of %s)", out, want, root)
		}
	}
	if out := output(t, bin, "-plugins"); !regexp.MustCompile(`(?m)^\s*(dns\.)?statusengine\s*$`).MatchString(out) {
		t.Errorf("coredns -plugins does not list statusengine:\n%s", out)
	}
}
