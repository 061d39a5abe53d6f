package codec

import "testing"

func TestEncodeVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.name[:16], func(t *testing.T) {
			got := EncodeLabels(v.beacon, v.epoch, "status.modsecurity.org", v.labelLen())
			if want := v.name + "."; got != want {
				t.Errorf("EncodeLabels(%q, %d)\n got %s\nwant %s", v.beacon, v.epoch, got, want)
			}
			if v.labelLen() == 32 {
				if got := Encode(v.beacon, v.epoch, statusZone); got != v.name+"." {
					t.Errorf("Encode(%q, %d) = %s", v.beacon, v.epoch, got)
				}
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		beacon   string
		epoch    int64
		zone     string
		labelLen int
		want     string
	}{
		{"a", 5, "status.modsecurity.org.", 32, "ME.5.status.modsecurity.org."},
		{"a", 5, "status.modsecurity.org", 32, "ME.5.status.modsecurity.org."},
		{"a", -1, "rpc.atomicorp.com", 32, "ME.rpc.atomicorp.com."},
		{"a", 0, ".", 32, "ME.0."},
		{"abcde", 1, "z.", 3, "MFR.GGZ.DF.1.z."},
		{"abcde", 1, "z.", 0, "MFRGGZDF.1.z."}, // below 1: the default 32
		{"", 7, "z", 32, "7.z."},
		{"", -1, "", 32, "."},
	}
	for _, tc := range tests {
		if got := EncodeLabels(tc.beacon, tc.epoch, tc.zone, tc.labelLen); got != tc.want {
			t.Errorf("EncodeLabels(%q, %d, %q, %d) = %q, want %q", tc.beacon, tc.epoch, tc.zone, tc.labelLen, got, tc.want)
		}
	}
}
