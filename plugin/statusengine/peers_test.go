package statusengine

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/statusengine/statusengine/api"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

const testZone = "status.modsecurity.org."

// wireLine is one record of a peer's page, as /api/v1/reports writes it.
func wireLine(key uint64, zone, modsec string) string {
	at := time.Unix(0, int64(key)).UTC().Format(time.RFC3339Nano)
	return fmt.Sprintf(`{"key":%q,"received":%q,"zone":%q,"resolver":"192.0.2.7","beacon":"%s,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x","epoch":1795549302}`,
		record.KeyString(key), at, zone, modsec, key%251)
}

func openTestStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testPuller(t *testing.T, url string, st *store.Store) *puller {
	t.Helper()
	return &puller{url: url, st: st, client: peerClient(peersConfig{}), interval: time.Second, started: time.Now(),
		zones: map[string]bool{testZone: true}}
}

// TestPeerSkipsBadRecords: a real peer on loopback serves a page holding,
// between good records, one whose time does not parse, one whose beacon is
// not a beacon, one of another zone (the hostile 99.9.9), one out of order
// and one without a key. The good ones are stored, each bad one is counted
// by reason, and the cursor passes them all: the next pull asks after the
// last key, and replication goes on.
func TestPeerSkipsBadRecords(t *testing.T) {
	base := uint64(time.Now().Add(-time.Hour).UnixNano())
	var cursors []string
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/reports" { // an older peer: no /api/v1/imports
			http.NotFound(w, r)
			return
		}
		served.Add(1)
		cursors = append(cursors, r.URL.Query().Get("cursor"))
		if r.URL.Query().Get("cursor") != "" {
			io.WriteString(w, `{"reports":[`+wireLine(base+100, testZone, "2.9.8")+`],"next_cursor":null}`)
			return
		}
		rows := []string{
			wireLine(base+1, testZone, "2.9.7"),
			strings.Replace(wireLine(base+2, testZone, "2.9.7"), `"received":"`, `"received":"not a time`, 1),
			strings.Replace(wireLine(base+3, testZone, "2.9.7"), `"beacon":"`, `"beacon":"\u0000`, 1),
			wireLine(base+4, "evil.example.", "99.9.9"),
			wireLine(base+1, testZone, "2.9.6"), // not after the key before it
			`{"received":"2026-01-01T00:00:00Z","zone":"status.modsecurity.org.","beacon":"x"}`,
			`[1,2,3]`,
			wireLine(base+9, testZone, "2.9.7"),
			strings.Replace(wireLine(base+10, testZone, "2.9.7"), `"epoch":1795549302`, `"epoch":"soon"`, 1),
		}
		io.WriteString(w, `{"reports":[`+strings.Join(rows, ",\n")+`],"next_cursor":null}`)
	}))
	defer srv.Close()
	st := openTestStore(t)
	p := testPuller(t, srv.URL, st)
	before := map[string]float64{}
	for _, r := range []string{rejectUndecodable, rejectOrder, rejectZone, rejectInvalid} {
		before[r] = rejectedCount(srv.URL, r)
	}
	if err := p.pull(context.Background()); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if n := st.Count(); n != 2 {
		t.Errorf("stored %d records, want the 2 good ones", n)
	}
	state, _ := st.Peer(srv.URL)
	if state.Cursor != base+10 || state.Synced.IsZero() {
		t.Errorf("cursor %x synced %v, want %x (past the last, undecodable record)", state.Cursor, state.Synced, base+10)
	}
	want := map[string]float64{rejectUndecodable: 3, rejectOrder: 3, rejectZone: 1}
	for r, n := range want {
		if got := rejectedCount(srv.URL, r) - before[r]; got != n {
			t.Errorf("peer_rejected_total{reason=%q} %v, want %v", r, got, n)
		}
	}
	if err := p.pull(context.Background()); err != nil {
		t.Fatalf("second pull: %v", err)
	}
	if n := st.Count(); n != 3 || cursors[1] != record.KeyString(base+10) {
		t.Errorf("second pull: %d records, cursor %q; want 3 after %x", n, cursors[1], base+10)
	}
	t.Logf("pages %d, stored %d, rejected as asserted: %v", served.Load(), st.Count(), want)
}

// TestPeerPageCap: a peer answering a 16 MiB page (whitespace, one huge
// record, or 20,000 records) fails the pull with an error naming the cap,
// having read no more than the cap; nothing of it is stored and the cursor
// stays.
func TestPeerPageCap(t *testing.T) {
	const size = 16 << 20
	base := uint64(time.Now().Add(-time.Hour).UnixNano())
	// Made before the measure: the peer runs in this process.
	spaces, letters := []byte(strings.Repeat(" ", size)), []byte(strings.Repeat("A", size))
	pages := []struct {
		name string
		body func(w io.Writer)
		want string
	}{
		{"whitespace", func(w io.Writer) {
			io.WriteString(w, `{"reports":[`)
			w.Write(spaces)
			io.WriteString(w, `],"next_cursor":null}`)
		}, "larger than the 4 MiB cap"},
		{"one huge record", func(w io.Writer) {
			io.WriteString(w, `{"reports":[{"key":"1","beacon":"`)
			w.Write(letters)
			io.WriteString(w, `"}],"next_cursor":null}`)
		}, "larger than the 4 MiB cap"},
		{"20000 records", func(w io.Writer) {
			io.WriteString(w, `{"reports":[`)
			for i := range 20000 {
				if i > 0 {
					io.WriteString(w, ",")
				}
				io.WriteString(w, wireLine(base+uint64(i)+1, testZone, "2.9.7"))
			}
			io.WriteString(w, `],"next_cursor":null}`)
		}, "more than the 1000 records asked"},
	}
	for _, tc := range pages {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cw := &countWriter{w: w, n: &sent}
				tc.body(cw)
			}))
			defer srv.Close()
			st := openTestStore(t)
			p := testPuller(t, srv.URL, st)
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			err := p.pull(context.Background())
			runtime.ReadMemStats(&m1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("pull: %v, want an error saying %q", err, tc.want)
			}
			alloc := m1.TotalAlloc - m0.TotalAlloc
			t.Logf("%s: %v; allocated %.1f MiB while the peer sent %.1f MiB", tc.name, err, float64(alloc)/(1<<20), float64(sent.Load())/(1<<20))
			// The decoder's buffer doubles up to the cap: allocations add
			// up to about 4 times the cap, whatever the peer sends.
			if alloc > 5*maxPeerBody {
				t.Errorf("a capped page allocated %d MiB in all, want under %d", alloc>>20, 5*maxPeerBody>>20)
			}
			if state, _ := st.Peer(srv.URL); st.Count() != 0 || state.Cursor != 0 {
				t.Errorf("after a failed page: %d records, cursor %x; want none", st.Count(), state.Cursor)
			}
		})
	}
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

// Write writes b in parts of 64 KiB, counting what went out.
func (c *countWriter) Write(b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		part := b[:min(len(b), 64<<10)]
		n, err := c.w.Write(part)
		c.n.Add(int64(n))
		total += n
		if err != nil {
			return total, err
		}
		b = b[n:]
	}
	return total, nil
}

// rejectedCount reads coredns_statusengine_peer_rejected_total{peer, reason}.
func rejectedCount(peer, reason string) float64 {
	var m dto.Metric
	peerRejected.WithLabelValues(peer, reason).Write(&m)
	return m.GetCounter().GetValue()
}

// TestPeersCorefile: a token never crosses the network in clear unless the
// operator says insecure; https with a ca file; read_token needs token.
// Errors name the line and the property.
func TestPeersCorefile(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	srv.Close()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	tests := []struct {
		input, wantLine, want string
	}{
		{"statusengine {\n  ttl 60\n  peers http://ns2.example.net:8053 {\n    token t\n  }\n}", ":3 ", "peers: http://ns2.example.net:8053 would send the token in clear"},
		{"statusengine {\n  peers http://192.0.2.2:8053 http://127.0.0.1:8053 {\n    token t\n  }\n}", ":2 ", "peers: http://192.0.2.2:8053 would send the token in clear"},
		{"statusengine {\n  peers http://ns2.example.net:8053 {\n    token t\n    insecure\n  }\n}", "", ""},
		{"statusengine {\n  peers http://127.0.0.1:8053 http://[::1]:8053 http://localhost:8053 {\n    token t\n  }\n}", "", ""},
		{"statusengine {\n  peers http://ns2.example.net:8053\n}", "", ""}, // no token to leak
		{"statusengine {\n  peers https://ns2.example.net:8053 {\n    token t\n    ca " + ca + "\n  }\n}", "", ""},
		{"statusengine {\n  peers https://ns2.example.net:8053 {\n    token t\n    ca " + notPEM + "\n  }\n}", ":4 ", "peers: ca \"" + notPEM + "\" holds no PEM certificate"},
		{"statusengine {\n  peers https://ns2.example.net:8053 {\n    ca " + dir + "/missing.pem\n  }\n}", ":3 ", "peers: ca: open"},
		{"statusengine {\n  peers https://ns2.example.net:8053 {\n    insecure yes\n  }\n}", ":3 ", "peers: insecure takes no value"},
		{"statusengine {\n  api 127.0.0.1:0 {\n    read_token r\n  }\n}", ":2 ", "read_token needs token"},
		{"statusengine {\n  api 127.0.0.1:0 {\n    token r\n    read_token r\n  }\n}", ":2 ", "read_token is the same as token"},
		{"statusengine {\n  api 127.0.0.1:0 {\n    token t\n    read_token r\n  }\n}", "", ""},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
		_, err := parse(c)
		if tc.want == "" {
			if err != nil {
				t.Errorf("test %d: %v", i, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantLine) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d: error %v, want line %q and %q", i, err, strings.TrimSpace(tc.wantLine), tc.want)
		}
	}
}

// TestPeerRedirect: a peer that redirects gets no request followed: the
// address it points to never sees the token, and the error names the
// redirect.
func TestPeerRedirect(t *testing.T) {
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Add(1)
		io.WriteString(w, `{"reports":[],"next_cursor":null}`)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	st := openTestStore(t)
	p := testPuller(t, srv.URL, st)
	p.token = "the-peers-token"
	err := p.pull(context.Background())
	if err == nil || !strings.Contains(err.Error(), "307") || !strings.Contains(err.Error(), other.URL) ||
		!strings.Contains(err.Error(), "redirects are not followed") {
		t.Errorf("pull: %v, want an error naming the redirect", err)
	}
	if leaked.Load() != 0 {
		t.Errorf("the redirect's target got %d requests", leaked.Load())
	}
}

// TestPeerTLS: a peer over https with its CA given by ca is pulled; the
// same peer without the CA (the system's roots) is refused.
func TestPeerTLS(t *testing.T) {
	base := uint64(time.Now().Add(-time.Hour).UnixNano())
	var auth atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		if r.URL.Path == "/api/v1/imports" {
			io.WriteString(w, `{"reports":[],"cursor":"0","more":false}`)
			return
		}
		io.WriteString(w, `{"reports":[`+wireLine(base+1, testZone, "2.9.7")+`],"next_cursor":null}`)
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	st := openTestStore(t)

	p := testPuller(t, srv.URL, st)
	p.token = "t"
	if err := p.pull(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("pull without the CA: %v, want a certificate error", err)
	}
	p.client = peerClient(peersConfig{roots: roots})
	if err := p.pull(context.Background()); err != nil {
		t.Fatalf("pull with the CA: %v", err)
	}
	if st.Count() != 1 || auth.Load() != "Bearer t" {
		t.Errorf("%d records, Authorization %q; want 1 and the token", st.Count(), auth.Load())
	}
}

// TestPeerCountersStartAtZero: the error and rejection counters of every
// configured peer exist at 0 once replication starts, before any error,
// so that rate() over them reads 0 on a healthy server instead of "no
// data".
func TestPeerCountersStartAtZero(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"reports":[],"next_cursor":null}`)
	}))
	defer srv.Close()
	url := srv.URL + "/zero-counters"
	r := startReplication(peersConfig{urls: []string{url}, interval: time.Hour}, []string{testZone}, openTestStore(t))
	r.stop()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "peer" && l.GetValue() == url {
					if v := m.GetCounter().GetValue(); v != 0 {
						t.Errorf("%s %v = %v, want 0", mf.GetName(), m.GetLabel(), v)
					}
					found[mf.GetName()]++
				}
			}
		}
	}
	if found["coredns_statusengine_peer_errors_total"] != 1 || found["coredns_statusengine_peer_rejected_total"] != 4 {
		t.Errorf("series of a healthy peer: %v, want peer_errors_total 1 and peer_rejected_total 4 (one a reason)", found)
	}
}

// TestPeerReplicatesCustomSchema: a real peer (the API over a store on
// loopback) holds reports of a zone of a custom schema beside
// ModSecurity's; a puller whose store knows the zone's schema takes them
// all, byte for byte, and one whose store does not (its server has the
// zone with ModSecurity's schema) stores ModSecurity's only and counts
// the others undecodable.
func TestPeerReplicatesCustomSchema(t *testing.T) {
	const custom = "status.example.org."
	sc, err := codec.NewSchema(codec.SchemaSpec{Fields: []string{"product", "version", "os", "arch", "id"}, Version: "version", Platform: "os", ID: "id"})
	if err != nil {
		t.Fatal(err)
	}
	src := openTestStore(t)
	if err := src.SetSchema([]string{custom}, sc); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute)
	for i := range 5 {
		r, err := codec.ParseSchema(sc, fmt.Sprintf("myapp,1.%d,Linux,x86_64, %02x ", i, i))
		if err != nil {
			t.Fatal(err)
		}
		r.Epoch, r.HasEpoch = 1795549302+int64(i), true
		rec := &record.Record{Received: now.Add(time.Duration(i) * time.Millisecond), Zone: custom, Resolver: netip.MustParseAddr("192.0.2.7"), Report: r.AsReport()}
		if o, err := src.Submit(rec); o != store.Stored {
			t.Fatal(o, err)
		}
	}
	rep, err := codec.ParseBeacon("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75")
	if err != nil {
		t.Fatal(err)
	}
	if o, err := src.Submit(&record.Record{Received: now.Add(time.Second), Zone: testZone, Resolver: netip.MustParseAddr("192.0.2.7"), Report: rep}); o != store.Stored {
		t.Fatal(o, err)
	}
	h := api.New()
	h.Configure(src, api.Config{Token: "peer-token"})
	srv := httptest.NewServer(h)
	defer srv.Close()

	export := func(st *store.Store) string {
		var b strings.Builder
		st.Export(&b, time.Unix(1, 0), time.Now().Add(time.Hour))
		return b.String()
	}
	dst := openTestStore(t)
	if err := dst.SetSchema([]string{custom}, sc); err != nil {
		t.Fatal(err)
	}
	p := testPuller(t, srv.URL, dst)
	p.token, p.zones = "peer-token", map[string]bool{testZone: true, custom: true}
	if err := p.pull(context.Background()); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if dst.Count() != 6 || export(dst) != export(src) {
		t.Errorf("replicated %d records:\n%s\nwant\n%s", dst.Count(), export(dst), export(src))
	}

	bare := openTestStore(t)
	before := rejectedCount(srv.URL, rejectUndecodable)
	p = testPuller(t, srv.URL, bare)
	p.token, p.zones = "peer-token", map[string]bool{testZone: true, custom: true}
	if err := p.pull(context.Background()); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if got := rejectedCount(srv.URL, rejectUndecodable) - before; bare.Count() != 1 || got != 5 {
		t.Errorf("without the schema: stored %d, undecodable %v; want 1 and 5", bare.Count(), got)
	}
}
