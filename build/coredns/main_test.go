package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusengine/statusengine/internal/netnstest"
	"github.com/statusengine/statusengine/internal/servertest"
)

// buildBinary builds this command as go build does for an operator, with
// the version control information of the checkout stamped in: -buildvcs=true
// where git is installed (Go's default, auto, does the same unless GOFLAGS
// turns it off, as on the development machine), else Go's default.
func buildBinary(t *testing.T) (bin, root string, git string) {
	t.Helper()
	built.once.Do(func() { built.bin, built.root, built.git, built.err = build() })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin, built.root, built.git
}

// built is the binary, built once for the package's tests.
var built struct {
	once           sync.Once
	bin, root, git string
	err            error
}

func build() (bin, root string, git string, err error) {
	root, err = servertest.ModuleRoot()
	if err != nil {
		return "", "", "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", "", "", err
	}
	dir, err := os.MkdirTemp("", "se-coredns-")
	if err != nil {
		return "", "", "", err
	}
	os.Chmod(dir, 0o755) // the port test runs the binary as nobody
	bin = filepath.Join(dir, "coredns")
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
		return "", "", "", fmt.Errorf("go %s ./build/coredns: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, root, git, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.bin != "" {
		os.RemoveAll(filepath.Dir(built.bin))
	}
	os.Exit(code)
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

// A start on port 53 without the capability fails at once and says what to
// do: run as nobody (no capabilities) inside a private network namespace.
func TestPrivilegedPortHint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: to create a network namespace and start the server as nobody in it")
	}
	ipBin, setpriv := findBin("ip"), findBin("setpriv")
	if ipBin == "" || setpriv == "" {
		t.Skip("needs ip (iproute2) and setpriv (util-linux)")
	}
	bin, _, _ := buildBinary(t)
	ns, err := netnstest.Add(ipBin, fmt.Sprintf("se-port-%d", os.Getpid()))
	if err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	defer ns.Delete()
	if err := ns.Setup(); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "se-port-") // t.TempDir's parent is closed to nobody
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	conf := filepath.Join(dir, "Corefile")
	os.WriteFile(conf, []byte(fmt.Sprintf("status.modsecurity.org:53 {\n    bind 127.0.0.1\n    statusengine {\n        db %s\n        api off\n    }\n}\n",
		filepath.Join(dir, "se.db"))), 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ipBin, ns.ExecArgs(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all", "--bounding-set=-all", "--", bin, "-conf", conf)...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("coredns on port 53 as nobody: %v\n%s", err, out)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("the server started (or hung) on port 53 without the capability: %v", err)
	}
	for _, want := range []string{"plugin/statusengine: cannot listen on 127.0.0.1:53", "permission denied", "CAP_NET_BIND_SERVICE", "setcap cap_net_bind_service=+ep", "AmbientCapabilities"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "se.db")); err == nil {
		t.Errorf("the store was opened before the port check")
	}
}

func findBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode().IsRegular() {
			return filepath.Join(d, name)
		}
	}
	return ""
}
