package client

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/test"
	"github.com/prometheus/client_golang/prometheus"
)

func TestBeacon(t *testing.T) {
	tests := []struct {
		values  []string
		want    string
		wantErr string
	}{
		{[]string{"myapp", "1.2.3", "linux", "amd64", "ab"}, "myapp,1.2.3,linux,amd64,ab", ""},
		{[]string{"myapp", "(null)", "", "amd64", ""}, "myapp,(null),,amd64,", ""},
		{[]string{"id"}, "id", ""},
		{[]string{strings.Repeat("p", 19), strings.Repeat("v", 64)}, strings.Repeat("p", 19) + "," + strings.Repeat("v", 64), ""},
		{nil, "", "0 values"},
		{make([]string, 17), "", "17 values"},
		{[]string{strings.Repeat("p", 20), "1"}, "", "value 1"},
		{[]string{"a", strings.Repeat("v", 65)}, "", "value 2"},
		{[]string{"a", "1,2"}, "", `value 2 ("1,2") holds ','`},
		{[]string{"a", "é"}, "", "value 2"},
		{[]string{"a", "x\n"}, "", "value 2"},
	}
	for _, tc := range tests {
		got, err := Beacon(tc.values...)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Beacon(%q) = %q, %v, want an error with %q", tc.values, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Beacon(%q) = %q, %v, want %q", tc.values, got, err, tc.want)
		}
	}
}

// A program reports itself with a beacon of its own to a zone of a custom
// schema: the server answers and stores it (counted stored).
func TestSendCustomSchema(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	inst, err := test.CoreDNSServer(fmt.Sprintf(`status.example.org:%s {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.11
        db %s
        api off
        schema {
            fields product version os arch id
            version version
            platform os
            id id
        }
    }
}`, port, filepath.Join(t.TempDir(), "se.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop(); inst.ShutdownCallbacks() })

	beacon, err := Beacon("myapp", "1.2.3", "linux", "amd64", "0123456789abcdef0123456789abcdef01234567")
	if err != nil {
		t.Fatal(err)
	}
	before := storedCustom(t)
	res, err := Send(context.Background(), beacon, Options{Server: "127.0.0.1:" + port, Zone: "status.example.org", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Addrs) != 1 || res.Addrs[0].String() != "192.0.2.11" {
		t.Errorf("result %+v", res)
	}
	if got := storedCustom(t) - before; got != 1 {
		t.Errorf("the server stored %v reports, want 1", got)
	}
}

// storedCustom reads the in-process server's count of stored reports of
// status.example.org.
func storedCustom(t *testing.T) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "coredns_statusengine_reports_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var zone, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "zone":
					zone = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			if zone == "status.example.org." && outcome == "stored" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
