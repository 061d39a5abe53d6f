package record

import (
	"net/netip"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// BenchmarkWire: the wire form of one record, which /api/v1/reports and
// the exports build for every row (the installation hash included).
func BenchmarkWire(b *testing.B) {
	r := &Record{Received: time.Unix(1795549302, 0), Zone: "status.modsecurity.org.", Resolver: netip.MustParseAddr("192.0.2.53"),
		Report: codec.Report{Format: codec.FormatCurrent, Modsec: "2.9.7", Server: "Apache/2.4.71 (Debian)", APRCompiled: "1.7.2",
			APRLoaded: "1.7.2", PCRECompiled: "10.42", Lua: "Lua 5.1", Libxml: "2.9.14", ID: "75"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Wire()
	}
}
