// Package natstest runs real NATS servers (Debian's nats-server, with
// JetStream) for tests: each on loopback ports of its own with a store
// directory of its own, ended by its pid, so a test can kill one (SIGKILL)
// and start it again on the same ports and store, alone or as a node of a
// JetStream cluster.
package natstest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusengine/statusengine/internal/servertest"
)

// Admin is a JetStream client of the NATS server at url, as an operator's
// nats CLI would be (to make, read or delete a stream), closed when the
// test ends.
func Admin(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Binary is the nats-server program, found on the PATH (or in /usr/sbin,
// where Debian puts it). Without it the test is skipped, or fails when
// CI=true: CI installs it (.ci/run), and a skip there would hide a
// missing proof.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nats-server not found: install the Debian package nats-server")
	}
	t.Skip("nats-server not found (Debian package nats-server)")
	return ""
}

// Server is one nats-server process with JetStream.
type Server struct {
	t           testing.TB
	bin, dir    string
	Name        string
	Port        int // client port, on 127.0.0.1
	ClusterPort int // 0: not in a cluster
	routes      []string
	args        []string // more arguments (authorization, limits)

	mu   sync.Mutex
	proc *servertest.Proc
	out  *bytes.Buffer
}

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// New prepares a single server (not started); args are more nats-server
// arguments (e.g. --auth TOKEN).
func New(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), Name: "n1", Port: FreePort(t), args: args}
	t.Cleanup(s.Kill)
	return s
}

// Start runs a single server and waits until it takes clients.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s := New(t, args...)
	s.Start()
	return s
}

// StartCluster runs n servers joined as one JetStream cluster by routes,
// and waits until each takes clients (the cluster elects its leader on its
// own: clients retry until it has).
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	bin := Binary(t)
	ss := make([]*Server, n)
	var routes []string
	for i := range ss {
		ss[i] = &Server{t: t, bin: bin, dir: t.TempDir(), Name: fmt.Sprintf("n%d", i+1), Port: FreePort(t), ClusterPort: FreePort(t)}
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ss[i].ClusterPort))
		t.Cleanup(ss[i].Kill)
	}
	for _, s := range ss {
		s.routes = routes
		s.Start()
	}
	return ss
}

// URL is the server's client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// Start runs the server (again, on the same ports and store) and waits up
// to 10 s until its client port answers.
func (s *Server) Start() {
	s.t.Helper()
	args := []string{"-a", "127.0.0.1", "-p", fmt.Sprint(s.Port), "-js", "-sd", filepath.Join(s.dir, "js"), "-n", s.Name}
	if s.ClusterPort != 0 {
		args = append(args, "--cluster_name", "se", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", s.ClusterPort),
			"--routes", strings.Join(s.routes, ","))
	}
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: out, mu: &s.mu}, &lockedWriter{w: out, mu: &s.mu}
	p, err := servertest.Start(cmd)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.proc, s.out = p, out
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second); err == nil {
			c.Close()
			return
		}
		if p.Exited() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("nats-server %s did not take clients on port %d: %s", s.Name, s.Port, s.Output())
}

// Kill ends the server at once (SIGKILL, by its pid) and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil || p.Exited() {
		return
	}
	syscall.Kill(p.Pid(), syscall.SIGKILL)
	p.WaitExit(10 * time.Second)
}

// Output is what the server wrote.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// lockedWriter serialises the process's writes with Output's reads.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
