package store

import (
	"net/netip"
	"testing"
	"time"
)

func TestRecordZoneRoundTrip(t *testing.T) {
	tests := []struct {
		zone    string
		source  string
		maxSize int
	}{
		{wellKnownZone, sourceResolver, 98}, // both stored as flag bits
		{wellKnownZone, sourceECS, 98},
		{"rpc.atomicorp.com.", "", 116},
		{"", "other", 103},
	}
	for _, tc := range tests {
		t.Run(tc.zone+tc.source, func(t *testing.T) {
			rec := newRecord(t, realBeacon, 1795549302, time.Unix(1795549302, 5))
			rec.Zone = tc.zone
			rec.Geo = Geo{Country: "DE", CountryName: "Germany", Source: tc.source}
			rec.ECS = netip.MustParsePrefix("198.51.100.0/24")
			val := rec.marshal(nil)
			if len(val) > tc.maxSize {
				t.Errorf("record is %d bytes, want at most %d", len(val), tc.maxSize)
			}
			got, err := unmarshal([]byte{0, 0, 0, 0, 0, 0, 0, 1}, val)
			if err != nil {
				t.Fatal(err)
			}
			if got.Geo != rec.Geo {
				t.Errorf("geo: got %+v, want %+v", got.Geo, rec.Geo)
			}
			if got.Zone != tc.zone || got.Report.Beacon != rec.Report.Beacon || got.ECS != rec.ECS || got.Report.Epoch != rec.Report.Epoch {
				t.Errorf("round trip: got zone %q beacon %q ecs %v epoch %d", got.Zone, got.Report.Beacon, got.ECS, got.Report.Epoch)
			}
		})
	}
}
