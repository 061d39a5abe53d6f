package rollup

import "testing"

// TestZoneGeoKey: a custom zone's keys round-trip and stay within a
// period's value bound; ModSecurity's keys are themselves (zone 0); hostile
// keys (from a damaged or crafted rollup) are refused, never a panic.
func TestZoneGeoKey(t *testing.T) {
	for _, c := range []struct {
		zone uint32
		v    string
	}{{1, "DE"}, {1, ""}, {127, "-89.9,-179.9"}, {128, "52.5,13.4"}, {1<<21 - 1, "-89.9,-179.9"}} {
		k := ZoneGeoKey(c.zone, c.v)
		if k == "" || len(k) > maxValue {
			t.Fatalf("ZoneGeoKey(%d, %q) = %q", c.zone, c.v, k)
		}
		z, v, ok := SplitGeoKey(k)
		if !ok || z != c.zone || v != c.v {
			t.Errorf("SplitGeoKey(%q) = %d %q %v, want %d %q", k, z, v, ok, c.zone, c.v)
		}
	}
	if k := ZoneGeoKey(1<<21, "-89.9,-179.9"); k != "" {
		t.Errorf("a key past the bound: %q", k)
	}
	if k := ZoneGeoKey(0, "DE"); k != "" {
		t.Errorf("zone 0: %q", k)
	}
	for _, k := range []string{"DE", "", "52.5,13.4"} {
		if z, v, ok := SplitGeoKey(k); !ok || z != 0 || v != k {
			t.Errorf("SplitGeoKey(%q) = %d %q %v", k, z, v, ok)
		}
	}
	for _, k := range []string{"\x00", "\x00\x80", "\x00\x00DE", "\x00\xff\xff\xff\xff\xff\xff"} {
		if _, _, ok := SplitGeoKey(k); ok {
			t.Errorf("SplitGeoKey(%q) accepted", k)
		}
	}
}
