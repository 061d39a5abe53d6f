package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
)

const cloneNewNet = 0x40000000 // CLONE_NEWNET

// sysSetns is setns(2)'s number; package syscall lacks SYS_SETNS on amd64
// and 386, and golang.org/x/sys is not a direct requirement of this module.
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

// setns moves the calling OS thread into the network namespace open at fd.
func setns(fd int) error {
	nr, err := sysSetns()
	if err != nil {
		return err
	}
	_, _, errno := syscall.RawSyscall(nr, uintptr(fd), cloneNewNet, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// dialInNetns opens a socket inside the named network namespace (the one
// `ip netns add` bind-mounted at /run/netns/<ns>) and connects it. The socket
// keeps its namespace for its whole life, so the returned conn can be used
// from any goroutine. The work is done on a dedicated, locked OS thread that
// is switched into the namespace and back; if switching back fails, the
// thread is left locked so the runtime throws it away with the goroutine.
func dialInNetns(ctx context.Context, ns, network, addr string) (net.Conn, error) {
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
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			restored = true
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := setns(int(target.Fd())); err != nil {
			restored = true
			ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		var d net.Dialer
		c, derr := d.DialContext(ctx, network, addr)
		if err := setns(int(orig.Fd())); err == nil {
			restored = true
		}
		ch <- result{c, derr}
	}()
	r := <-ch
	return r.c, r.err
}
