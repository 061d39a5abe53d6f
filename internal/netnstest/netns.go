// Package netnstest gives tests a private network namespace: created and
// removed with iproute2's ip, its loopback up with the addresses a test
// needs, commands run inside it, and sockets opened inside it from Go.
// Nothing in such a namespace is routed anywhere: it has only its loopback.
//
// Whether a test skips or fails when it cannot have a namespace is the
// test's rule, not this package's: every function returns an error.
package netnstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// ipTimeout bounds each short ip command (add, del, link, addr).
const ipTimeout = 10 * time.Second

// NS is a network namespace made by `ip netns add`, which bind-mounts it at
// /run/netns/<Name>.
type NS struct {
	Name string // the name ip netns knows it by
	IP   string // path of iproute2's ip program
}

// Add creates the namespace name with the ip program at ip. The error
// carries ip's output (a namespace of that name that already exists says
// "File exists").
func Add(ip, name string) (*NS, error) {
	n := &NS{Name: name, IP: ip}
	if err := n.ip("netns", "add", name); err != nil {
		return nil, err
	}
	return n, nil
}

// Delete removes the namespace.
func (n *NS) Delete() error { return n.ip("netns", "del", n.Name) }

// Setup brings the loopback up and adds addrs (CIDRs) to it. IPv6 addresses
// get nodad, so that they are usable at once (no duplicate address
// detection).
func (n *NS) Setup(addrs ...string) error {
	cmds := [][]string{{"-n", n.Name, "link", "set", "lo", "up"}}
	for _, a := range addrs {
		c := []string{"-n", n.Name, "addr", "add", a, "dev", "lo"}
		if p, err := netip.ParsePrefix(a); err == nil && p.Addr().Is6() {
			c = append(c, "nodad")
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := n.ip(c...); err != nil {
			return err
		}
	}
	return nil
}

// AddLocalRoute makes every address of prefix (CIDR) local to the
// namespace's loopback (a "local" route), and lets sockets send from
// addresses not assigned to any device (ip_nonlocal_bind): one socket can
// then send from any address of prefix, as spoofed sources would, and get
// the answers.
func (n *NS) AddLocalRoute(prefix string) error {
	family, sysctl := "-4", "/proc/sys/net/ipv4/ip_nonlocal_bind"
	if p, err := netip.ParsePrefix(prefix); err == nil && p.Addr().Is6() {
		family, sysctl = "-6", "/proc/sys/net/ipv6/ip_nonlocal_bind"
	}
	if err := n.ip("-n", n.Name, family, "route", "add", "local", prefix, "dev", "lo"); err != nil {
		return err
	}
	// /proc/sys/net is the namespace's own for a process inside it.
	return n.ip("netns", "exec", n.Name, "sh", "-c", "echo 1 > "+sysctl)
}

// Command runs name inside the namespace. `ip netns exec` execs it in
// place, so the started process is name itself, not a wrapper, and can be
// signalled by its pid.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command(n.IP, n.ExecArgs(name, args...)...)
}

// ExecArgs are the arguments of ip that run name inside the namespace, for
// callers that build the exec.Cmd themselves.
func (n *NS) ExecArgs(name string, args ...string) []string {
	return append([]string{"netns", "exec", n.Name, name}, args...)
}

// Dial opens a socket inside the namespace from local (an address without a
// port; "" for any) and connects it to remote. The socket keeps its
// namespace for its whole life, so the conn works from any goroutine.
func (n *NS) Dial(ctx context.Context, network, local, remote string) (net.Conn, error) {
	var c net.Conn
	var derr error
	err := n.Do(func() {
		d := net.Dialer{}
		if local != "" {
			if network == "udp" {
				d.LocalAddr, _ = net.ResolveUDPAddr("udp", net.JoinHostPort(local, "0"))
			} else {
				d.LocalAddr, _ = net.ResolveTCPAddr("tcp", net.JoinHostPort(local, "0"))
			}
		}
		c, derr = d.DialContext(ctx, network, remote)
	})
	if err != nil {
		return nil, err
	}
	return c, derr
}

// HTTPClient reaches listeners inside the namespace. It takes no proxy from
// the environment and keeps no connection alive.
func (n *NS) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return n.Dial(ctx, network, "", addr)
		},
		DisableKeepAlives: true,
	}}
}

// ip runs one short ip command.
func (n *NS) ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.IP, args...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %v: %w", ipTimeout, err)
		}
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
