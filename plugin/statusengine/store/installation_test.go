package store

import (
	"net/netip"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

func TestInstallationKey(t *testing.T) {
	const other = "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,76"
	const upgraded = "2.9.8,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75"
	rec := func(beacon, resolver, ecs string) *record.Record {
		r := newRecord(t, beacon, 1, time.Unix(1795549302, 0))
		r.Resolver = netip.MustParseAddr(resolver)
		if ecs != "" {
			r.ECS = netip.MustParsePrefix(ecs)
		}
		return r
	}
	base := rec(realBeacon, "192.0.2.53", "")
	tests := []struct {
		name string
		r    *record.Record
		same bool
	}{
		{"same report again", rec(realBeacon, "192.0.2.53", ""), true},
		{"other resolver of the same /24", rec(realBeacon, "192.0.2.200", ""), true},
		{"resolver in another /24", rec(realBeacon, "192.0.3.53", ""), false},
		{"other id byte", rec(other, "192.0.2.53", ""), false},
		{"upgraded modsec", rec(upgraded, "192.0.2.53", ""), false},
		{"ECS names the client network", rec(realBeacon, "192.0.2.53", "198.51.100.0/24"), false},
	}
	for _, tc := range tests {
		if got := record.InstallationKey(tc.r) == record.InstallationKey(base); got != tc.same {
			t.Errorf("%s: same installation = %v, want %v", tc.name, got, tc.same)
		}
	}
	// ECS lengths differ by resolver; cut to /24 (/48) they agree.
	a := rec(realBeacon, "8.8.8.8", "198.51.100.0/24")
	b := rec(realBeacon, "9.9.9.9", "198.51.100.77/32")
	if record.InstallationKey(a) != record.InstallationKey(b) {
		t.Error("ECS /24 and /32 of one host give two installations")
	}
	c := rec(realBeacon, "2001:db8::53", "2001:db8:aa:bb00::/56")
	d := rec(realBeacon, "2001:db8::54", "2001:db8:aa::/48")
	if record.InstallationKey(c) != record.InstallationKey(d) {
		t.Error("ECS /56 and /48 of one network give two installations")
	}
}

func TestInstallNetwork(t *testing.T) {
	tests := []struct {
		resolver, ecs, want string
	}{
		{"192.0.2.53", "", "192.0.2.0/24"},
		{"2001:db8:1:2::53", "", "2001:db8:1::/48"},
		{"::ffff:192.0.2.53", "", "192.0.2.0/24"},
		{"192.0.2.53", "198.51.100.7/32", "198.51.100.0/24"},
		{"192.0.2.53", "198.51.0.0/16", "198.51.0.0/16"},
		{"192.0.2.53", "2001:db8:aa:bb00::/56", "2001:db8:aa::/48"},
	}
	for _, tc := range tests {
		r := &record.Record{Resolver: netip.MustParseAddr(tc.resolver)}
		if tc.ecs != "" {
			r.ECS = netip.MustParsePrefix(tc.ecs)
		}
		if got := record.InstallNetwork(r).String(); got != tc.want {
			t.Errorf("InstallNetwork(%s, %s) = %s, want %s", tc.resolver, tc.ecs, got, tc.want)
		}
	}
	if record.InstallNetwork(&record.Record{}).IsValid() {
		t.Error("a record without addresses has a network")
	}
}
