package statusengine

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
)

// hintPrivilegedPort is what to do when a port below 1024 cannot be bound.
const hintPrivilegedPort = "ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, " +
	"grant the binary the capability (setcap cap_net_bind_service=+ep /usr/local/bin/coredns), " +
	"or start it from systemd with AmbientCapabilities=CAP_NET_BIND_SERVICE (dist/statusengine.service)"

// checkBind tries, once at the first startup and before the store is
// opened, to listen on each address of the server block, and turns the
// kernel's "permission denied" into an error that says what to do. CoreDNS
// itself reports only "listen tcp :53: bind: permission denied", after every
// plugin has started. Other errors are left to CoreDNS's own listener.
func checkBind(cfg *dnsserver.Config) func() error {
	return func() error {
		for _, h := range cfg.ListenHosts {
			addr := net.JoinHostPort(h, cfg.Port)
			l, err := net.Listen("tcp", addr)
			if err == nil {
				l.Close()
			}
			if err := bindError(addr, err); err != nil {
				return plugin.Error(pluginName, err)
			}
		}
		return nil
	}
}

// bindError wraps a permission error of listening on addr with the hint.
func bindError(addr string, err error) error {
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("cannot listen on %s: %w; %s", addr, err, hintPrivilegedPort)
	}
	return nil
}
