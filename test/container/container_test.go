package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/statusengine/statusengine/internal/netnstest"
	"github.com/statusengine/statusengine/internal/servertest"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

const (
	realBeacon = "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75"
	realName   = "GIXDSLRXFRAXAYLDNBSS6MROGQXDOMJA.FBCGKYTJMFXCSLBRFY3S4MRPGEXDOLRS.FQYTALRUGIXSYTDVMEQDKLRRFQZC4OJO.GE2CYNZV.1795549302.status.modsecurity.org."
)

func envTrue(name string) bool { v, _ := strconv.ParseBool(os.Getenv(name)); return v }

// skipOrFail skips, or fails when fatal (CI=true and a package is missing).
func skipOrFail(t *testing.T, fatal bool, format string, args ...any) {
	t.Helper()
	if fatal {
		t.Fatalf(format+"\n(failing instead of skipping: CI=true and a required package is missing)", args...)
	}
	t.Skipf(format, args...)
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

// podman runs Debian's podman on storage of its own in the test's temp dir,
// so that nothing of the host's containers, images or events is touched.
type podman struct {
	bin, dir string
	runOpts  []string // what this host needs to run a container (see probe)
}

func (p *podman) cmd(ctx context.Context, args ...string) *exec.Cmd {
	global := []string{"--root", filepath.Join(p.dir, "storage"), "--runroot", filepath.Join(p.dir, "run"),
		"--tmpdir", filepath.Join(p.dir, "tmp"), "--storage-driver", "overlay", "--events-backend", "none"}
	cmd := exec.CommandContext(ctx, p.bin, append(global, args...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (p *podman) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := p.cmd(ctx, args...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("podman %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), err
}

// probe finds the options this host needs to start a container from image,
// by running `coredns -version` in it: none on an ordinary host. Where root
// lacks CAP_SYS_RESOURCE (some VMs and containers), podman's default
// nofile/nproc limits cannot be set; where cgroup v1 and v2 are mixed, crun
// refuses and runc (if installed) works. Anything else skips the test with
// podman's reason: this host cannot run containers.
func (p *podman) probe(t *testing.T, image string) string {
	t.Helper()
	var out string
	var err error
	for range 3 {
		args := append(append([]string{"run", "--rm", "--network", "none"}, p.runOpts...), image, "-version")
		out, err = p.run(2*time.Minute, args...)
		if err == nil {
			return out
		}
		switch {
		case strings.Contains(out, "cgroups in hybrid mode") && !hasOpt(p.runOpts, "--runtime"):
			if findBin("runc") == "" {
				t.Skipf("podman cannot run containers here: crun refuses this host's mixed cgroup v1/v2 hierarchy, and runc (Debian package runc) is not installed:\n%s", out)
			}
			p.runOpts = append(p.runOpts, "--runtime", "runc")
		case strings.Contains(out, "rlimit") && !hasOpt(p.runOpts, "--ulimit"):
			p.runOpts = append(p.runOpts, "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
		default:
			t.Skipf("podman cannot run containers here (%v):\n%s", err, out)
		}
		t.Logf("this host needs %v to run a container (%s)", p.runOpts, firstLine(out))
	}
	t.Skipf("podman cannot run containers here (%v):\n%s", err, out)
	return ""
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestContainer builds the image of dist/Containerfile from static binaries
// (FROM scratch: nothing is pulled), runs it as it is documented, in a
// private network namespace, and checks that it answers and stores a report
// on port 53 as a non-root user with only CAP_NET_BIND_SERVICE, that the
// database lands on the volume, and that a stop commits and exits cleanly.
func TestContainer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux (podman, network namespaces)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: rootful podman in a network namespace made with ip netns")
	}
	p := &podman{bin: findBin("podman")}
	ipBin := findBin("ip")
	if p.bin == "" || ipBin == "" {
		skipOrFail(t, envTrue("CI"), "missing podman or ip; install with: apt-get install -y podman iproute2")
	}
	root, err := servertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "se-ctr-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	tag := fmt.Sprintf("localhost/statusengine-test:%d", os.Getpid())
	ctrName := fmt.Sprintf("se-ctr-%d", os.Getpid())
	vol := ctrName
	t.Cleanup(func() {
		p.run(time.Minute, "rm", "--force", "--time", "0", ctrName)
		p.run(time.Minute, "volume", "rm", "--force", vol)
		p.run(time.Minute, "rmi", "--force", tag)
		if out, err := exec.Command("findmnt", "-rn", "-o", "TARGET").Output(); err == nil && strings.Contains(string(out), dir) {
			t.Errorf("mounts left under %s; not removing it", dir)
			return
		}
		os.RemoveAll(dir)
	})

	// The build context, as the Containerfile's header says to make it.
	ctx := filepath.Join(dir, "context")
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "dist", "container"), ctx).CombinedOutput(); err != nil {
		t.Fatalf("copying dist/container: %v: %s", err, out)
	}
	goCmd := findBin("go")
	if goCmd == "" {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	for _, b := range []string{"coredns", "statusengine"} {
		start := time.Now()
		// A cold static build compiles every module CoreDNS needs: 6 to 10
		// minutes on two cores shared with the rest of the suite.
		bctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		cmd := exec.CommandContext(bctx, goCmd, "-C", root, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(ctx, b), "./build/"+b)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("CGO_ENABLED=0 go build ./build/%s: %v\n%s", b, err, out)
		}
		t.Logf("built %s (static) in %v", b, time.Since(start).Round(time.Millisecond))
	}
	start := time.Now()
	if out, err := p.run(5*time.Minute, "build", "--pull=never", "-f", filepath.Join(root, "dist", "Containerfile"), "-t", tag, ctx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("podman build -f dist/Containerfile: %s in %v", tag, time.Since(start).Round(time.Millisecond))

	version := p.probe(t, tag)
	t.Logf("coredns -version in the image:\n%s", version)
	if !strings.Contains(version, "CoreDNS-1.15.0") || !strings.Contains(version, "statusengine") {
		t.Errorf("coredns -version in the image: %q", version)
	}
	if out, err := p.run(time.Minute, append(append([]string{"run", "--rm", "--network", "none"}, p.runOpts...),
		"--entrypoint", "statusengine", tag, "version")...); err != nil || !strings.HasPrefix(out, "statusengine ") {
		t.Errorf("statusengine version in the image: %v: %q", err, out)
	}

	ns, err := netnstest.Add(ipBin, ctrName)
	if err != nil {
		t.Skipf("cannot create a network namespace (%v)", err)
	}
	t.Cleanup(func() { ns.Delete() })
	if err := ns.Setup(); err != nil {
		t.Fatal(err)
	}

	args := append([]string{"run", "--detach", "--name", ctrName}, p.runOpts...)
	args = append(args, "--network", "ns:/run/netns/"+ns.Name, "--cap-drop=all", "--cap-add=net_bind_service",
		"-v", vol+":/var/lib/statusengine", tag)
	if out, err := p.run(2*time.Minute, args...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := p.run(time.Minute, "logs", ctrName)
			t.Logf("container log:\n%s", out)
		}
	})

	// Ready when port 53 answers (bounded).
	var r *dns.Msg
	for i := 0; i < 100; i++ {
		if r, err = query(ns, "status.modsecurity.org.", dns.TypeSOA); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the container does not answer on 127.0.0.1:53 in its namespace: %v", err)
	}
	r, err = query(ns, realName, dns.TypeA)
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Fatalf("report query: %v %v", err, r)
	}

	// The API lists the report.
	resp, err := ns.HTTPClient(5 * time.Second).Get(fmt.Sprintf("http://127.0.0.1:8053/api/0/%d", time.Now().Unix()+60))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var api struct {
		Amount  int `json:"amount"`
		Results []struct {
			Beacon string `json:"beacon"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &api); err != nil || api.Amount != 1 || api.Results[0].Beacon != realBeacon {
		t.Errorf("API: %v %s", err, body)
	}

	// Not root, and only the one capability.
	top, err := p.run(time.Minute, "top", ctrName, "user", "huser", "capeff")
	t.Logf("podman top:\n%s", top)
	if err != nil {
		t.Errorf("%v", err)
	} else if lines := strings.Split(top, "\n"); len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != "statusengine 65532 NET_BIND_SERVICE" {
		t.Errorf("the server runs as %q, want user statusengine (65532) with NET_BIND_SERVICE only", top)
	}

	// A stop is a SIGTERM: a clean exit, the database on the volume.
	if out, err := p.run(time.Minute, "stop", "--time", "10", ctrName); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	state, _ := p.run(time.Minute, "inspect", "--format", "{{.State.ExitCode}}", ctrName)
	logs, _ := p.run(time.Minute, "logs", ctrName)
	if state != "0" || !strings.Contains(logs, "SIGTERM") {
		t.Errorf("after podman stop: exit code %q, log:\n%s", state, logs)
	}
	if !strings.Contains(logs, "database /var/lib/statusengine/statusengine.db: 0 reports; API http://0.0.0.0:8053/") {
		t.Errorf("no startup line naming the database and the API in the log:\n%s", logs)
	}
	mp, err := p.run(time.Minute, "volume", "inspect", "--format", "{{.Mountpoint}}", vol)
	if err != nil {
		t.Fatalf("%v: %s", err, mp)
	}
	db := filepath.Join(mp, "statusengine.db")
	st, err := os.Stat(db)
	if err != nil {
		t.Fatalf("no database on the volume: %v", err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 65532 {
		t.Errorf("the database on the volume belongs to uid %d, want the server's 65532", sys.Uid)
	}
	s, err := store.Open(db, store.Options{OpenTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Count(); n != 1 {
		t.Errorf("the volume's database holds %d reports, want 1", n)
	}
	s.Close()
}

// query asks the server in the namespace over UDP.
func query(ns *netnstest.NS, name string, qtype uint16) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := ns.Dial(ctx, "udp", "", net.JoinHostPort("127.0.0.1", "53"))
	if err != nil {
		return nil, err
	}
	co := &dns.Conn{Conn: c}
	defer co.Close()
	co.SetDeadline(time.Now().Add(2 * time.Second))
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}
