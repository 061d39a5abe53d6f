package statusengine

import (
	"net/netip"
	"testing"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

func TestKeepAddresses(t *testing.T) {
	tests := []struct {
		mode                 addressMode
		resolver, ecs        string
		wantResolver, wantEC string
	}{
		{addressesFull, "192.0.2.77", "198.51.100.0/24", "192.0.2.77", "198.51.100.0/24"},
		{addressesTruncate, "192.0.2.77", "198.51.100.128/25", "192.0.2.0", "198.51.100.0/24"},
		{addressesTruncate, "2001:db8:1:2::53", "2001:db8:aa:bb::/56", "2001:db8:1::", "2001:db8:aa::/48"},
		{addressesTruncate, "192.0.2.77", "198.51.0.0/16", "192.0.2.0", "198.51.0.0/16"},
		{addressesDrop, "192.0.2.77", "198.51.100.0/24", "invalid IP", "invalid Prefix"},
	}
	for _, tc := range tests {
		se := &StatusEngine{addresses: tc.mode}
		rec := &record.Record{Resolver: netip.MustParseAddr(tc.resolver), ECS: netip.MustParsePrefix(tc.ecs)}
		se.keepAddresses(rec)
		if rec.Resolver.String() != tc.wantResolver || rec.ECS.String() != tc.wantEC {
			t.Errorf("mode %d %s %s: kept %s %s, want %s %s", tc.mode, tc.resolver, tc.ecs, rec.Resolver, rec.ECS, tc.wantResolver, tc.wantEC)
		}
	}
}

func TestLimitNetwork(t *testing.T) {
	tests := map[string]string{
		"192.0.2.77":       "192.0.2.0/24",
		"2001:db8:1:2::53": "2001:db8:1::/48",
		"127.0.0.1":        "invalid Prefix", // local proxy or test: not charged
		"::1":              "invalid Prefix",
	}
	for in, want := range tests {
		if got := limitNetwork(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("limitNetwork(%s) = %s, want %s", in, got, want)
		}
	}
}
