package record

import (
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// TestInstallationHashStable: the installation the API shows for a record
// never changes between builds (a client that counts distinct values across
// pages and days would count one installation twice), for each kind of
// network the key holds: a resolver's /24, an ECS prefix (IPv6, cut to /48),
// a v4-mapped resolver (the same network as its IPv4 address), none (an
// import without addresses), and a custom schema's report.
func TestInstallationHashStable(t *testing.T) {
	now := time.Unix(1795549302, 0)
	custom := testRecord(t, now)
	custom.Zone = "status.example.org."
	custom.Report = codec.Report{Format: codec.FormatSchema, Beacon: "myapp,1.2.3,linux", ID: "a1"}
	ecs := testRecord(t, now)
	ecs.ECS = netip.MustParsePrefix("2001:db8:1:2::/56")
	mapped := testRecord(t, now)
	mapped.Resolver = netip.MustParseAddr("::ffff:192.0.2.53")
	none := testRecord(t, now)
	none.Resolver = netip.Addr{}
	tests := []struct {
		name string
		r    *Record
		hash string
	}{
		{"resolver", testRecord(t, now), "f6e3c14b784a3fca"},
		{"ecs", ecs, "f3aa1573f51d8033"},
		{"v4-mapped", mapped, "f6e3c14b784a3fca"},
		{"no address", none, "197e31fd0ccee0fa"},
		{"custom schema", custom, "d1488053a3264368"},
	}
	for _, tc := range tests {
		h := InstallationHash(tc.r)
		if got := hex.EncodeToString(h[:]); got != tc.hash {
			t.Errorf("%s: %s, want %s (key %q)", tc.name, got, tc.hash, InstallationKey(tc.r))
		}
		if got := tc.r.Wire().Installation; got != tc.hash {
			t.Errorf("%s: wire form says %s, want %s", tc.name, got, tc.hash)
		}
	}
}
