package e2e

import (
	"encoding/base32"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// zone is the status zone the Debian ModSecurity build reports to.
const zone = "status.modsecurity.org"

// beaconFields is the beacon split the way the API reports it.
type beaconFields struct {
	Version, Server          string
	AprCompiled, AprLoaded   string
	PcreCompiled, PcreLoaded string
	Lua, Libxml, ID          string
}

// splitBeacon splits a current-format beacon
// (modsec,server,apr_c/apr_l,pcre_c/pcre_l,lua,libxml,id) from both ends:
// modsec first, then id, libxml, lua, pcre and apr from the right; the rest is
// the server signature (which may itself contain commas on 2.8.0).
func splitBeacon(b string) (beaconFields, error) {
	var f beaconFields
	modsec, rest, ok := strings.Cut(b, ",")
	if !ok {
		return f, fmt.Errorf("beacon %q: no comma", b)
	}
	var right [5]string // apr, pcre, lua, libxml, id
	for k := len(right) - 1; k >= 0; k-- {
		j := strings.LastIndexByte(rest, ',')
		if j < 0 {
			return f, fmt.Errorf("beacon %q: fewer than 7 fields", b)
		}
		right[k], rest = rest[j+1:], rest[:j]
	}
	pair := func(s string) (string, string) {
		c, l, _ := strings.Cut(s, "/")
		return strings.TrimSpace(c), strings.TrimSpace(l)
	}
	f.Version, f.Server = modsec, rest
	f.AprCompiled, f.AprLoaded = pair(right[0])
	f.PcreCompiled, f.PcreLoaded = pair(right[1])
	f.Lua, f.Libxml, f.ID = right[2], right[3], right[4]
	return f, nil
}

// decodeBeaconName decodes a full beacon query name
// (<base32 labels>.<epoch>.status.modsecurity.org., any letter case) into the
// beacon text and the client epoch.
func decodeBeaconName(name string) (beacon string, epoch int64, err error) {
	n := strings.TrimSuffix(strings.ToLower(name), ".")
	if !strings.HasSuffix(n, "."+zone) {
		return "", 0, fmt.Errorf("%q is not under %s", name, zone)
	}
	labels := strings.Split(strings.TrimSuffix(n, "."+zone), ".")
	if len(labels) < 2 {
		return "", 0, fmt.Errorf("%q: no beacon labels before the epoch", name)
	}
	epoch, err = strconv.ParseInt(labels[len(labels)-1], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%q: epoch label: %v", name, err)
	}
	b32 := strings.ToUpper(strings.Join(labels[:len(labels)-1], ""))
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(b32)
	if err != nil {
		return "", 0, fmt.Errorf("%q: base32: %v", name, err)
	}
	return string(raw), epoch, nil
}

func TestSplitBeacon(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want beaconFields
	}{
		{"2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75",
			beaconFields{"2.9.7", "Apache/2.4.71 (Debian)", "1.7.2", "1.7.2", "10.42", "", "Lua 5.1", "2.9.14", "75"}},
		{"2.8.0,Apache/2.2.22 (Ubuntu) PHP/5.3.10-1ubuntu3.9 with Suhosin-Patch,1.4.6/1.4.6, 8.31 /8.31 2012-07-06,(null),2.7.8,no unique id",
			beaconFields{"2.8.0", "Apache/2.2.22 (Ubuntu) PHP/5.3.10-1ubuntu3.9 with Suhosin-Patch", "1.4.6", "1.4.6", "8.31", "8.31 2012-07-06", "(null)", "2.7.8", "no unique id"}},
	} {
		got, err := splitBeacon(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("splitBeacon(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if _, err := splitBeacon("2.9.7,Apache,1/1"); err == nil {
		t.Error("splitBeacon accepted a 3-field beacon")
	}
}

func TestDecodeBeaconName(t *testing.T) {
	// Captured from ModSecurity 2.9.7 through Unbound (0x20 randomised).
	name := "GIXdSlRxFraXaYlDNbss6mROgqxdoMjA.fBCgKyTjmFxCsLbrfy3S4MrPgExDOlrs.FqytalrUgIxsytDVMeQdKlRRFqzc4Ojo.GE2cyNzV.1795549419.sTAtUs.mOdsEcURity.Org."
	b, e, err := decodeBeaconName(name)
	if err != nil || b != "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75" || e != 1795549419 {
		t.Fatalf("decodeBeaconName = %q, %d, %v", b, e, err)
	}
	if _, _, err := decodeBeaconName("1795549419.status.modsecurity.org."); err == nil {
		t.Error("decoded a minimised partial name as a beacon")
	}
}
