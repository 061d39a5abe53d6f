package reliability

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// netns is a private network namespace with only a loopback device, holding
// the addresses a test needs to send from: public-looking resolver addresses
// that the per-source limit charges (it lets 127.0.0.0/8 through). No
// packet leaves it.
type netns struct {
	name string
}

// newNetns creates the namespace and adds addrs (CIDRs) to its loopback.
func newNetns(t *testing.T, addrs ...string) *netns {
	t.Helper()
	needRoot(t)
	needCommand(t, "ip", "iproute2")
	n := &netns{name: fmt.Sprintf("se-rel-%d-%d", os.Getpid(), time.Now().UnixNano()%100000)}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ip netns add: %v %s", err, out)
		}
		t.Skipf("ip netns add not permitted here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	cmds := [][]string{{"-n", n.name, "link", "set", "lo", "up"}}
	for _, a := range addrs {
		c := []string{"-n", n.name, "addr", "add", a, "dev", "lo"}
		if p, err := netip.ParsePrefix(a); err == nil && p.Addr().Is6() {
			c = append(c, "nodad") // usable at once, no duplicate address detection
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", c, err, out)
		}
	}
	return n
}

// command runs name inside the namespace.
func (n *netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

const cloneNewNet = 0x40000000 // CLONE_NEWNET

// sysSetns is setns(2)'s number; package syscall lacks SYS_SETNS on amd64.
func sysSetns() (uintptr, error) {
	switch runtime.GOARCH {
	case "amd64":
		return 308, nil
	case "386":
		return 346, nil
	case "arm64", "riscv64", "loong64":
		return 268, nil
	case "arm":
		return 375, nil
	case "ppc64", "ppc64le":
		return 350, nil
	case "s390x":
		return 339, nil
	}
	return 0, fmt.Errorf("setns: unknown syscall number on %s", runtime.GOARCH)
}

func setns(fd int) error {
	nr, err := sysSetns()
	if err != nil {
		return err
	}
	if _, _, errno := syscall.RawSyscall(nr, uintptr(fd), cloneNewNet, 0); errno != 0 {
		return errno
	}
	return nil
}

// dial opens a socket inside the namespace from local (may be "") to
// remote. The socket keeps its namespace for life, so the conn works from
// any goroutine. The switch happens on a locked OS thread, which is thrown
// away if switching back fails.
func (n *netns) dial(ctx context.Context, network, local, remote string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		restored := false
		defer func() {
			if restored {
				runtime.UnlockOSThread()
			}
		}()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
		if err != nil {
			restored = true
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			restored = true
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := setns(int(target.Fd())); err != nil {
			restored = true
			ch <- result{nil, fmt.Errorf("setns %s: %w", n.name, err)}
			return
		}
		d := net.Dialer{}
		if local != "" {
			if network == "udp" {
				d.LocalAddr, _ = net.ResolveUDPAddr("udp", net.JoinHostPort(local, "0"))
			} else {
				d.LocalAddr, _ = net.ResolveTCPAddr("tcp", net.JoinHostPort(local, "0"))
			}
		}
		c, derr := d.DialContext(ctx, network, remote)
		if err := setns(int(orig.Fd())); err == nil {
			restored = true
		}
		ch <- result{c, derr}
	}()
	r := <-ch
	return r.c, r.err
}

// httpClient reaches listeners inside the namespace.
func (n *netns) httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return n.dial(ctx, network, "", addr)
		},
		DisableKeepAlives: true,
	}}
}
