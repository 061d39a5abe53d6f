package reliability

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/statusengine/statusengine/internal/netnstest"
)

// newNetns creates a private network namespace with only a loopback device,
// holding addrs (CIDRs): the addresses a test needs to send from, such as
// public-looking resolver addresses that the per-source limit charges (it
// lets 127.0.0.0/8 through). No packet leaves it.
func newNetns(t *testing.T, addrs ...string) *netnstest.NS {
	t.Helper()
	needRoot(t)
	ip := needCommand(t, "ip", "iproute2")
	n, err := netnstest.Add(ip, fmt.Sprintf("se-rel-%d-%d", os.Getpid(), time.Now().UnixNano()%100000))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("ip netns add not permitted here: %v", err)
	}
	t.Cleanup(func() { n.Delete() })
	if err := n.Setup(addrs...); err != nil {
		t.Fatal(err)
	}
	return n
}
