package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coredns/coredns/test"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine"
)

func init() { statusengine.AddDirective() }

const realBeacon = "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75"

func freePort(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// startServer runs a real statusengine CoreDNS on host:port, API on loopback.
func startServer(t *testing.T, host, port string) (apiAddr string) {
	t.Helper()
	apiAddr = "127.0.0.1:" + freePort(t, "127.0.0.1")
	db := filepath.Join(t.TempDir(), "se.db")
	inst, err := test.CoreDNSServer(fmt.Sprintf(`status.modsecurity.org:%s {
    bind %s
    statusengine {
        answer 192.0.2.10
        db %s
        api %s
    }
}`, port, host, db, apiAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop() })
	return apiAddr
}

func stored(t *testing.T, apiAddr string) []map[string]any {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/api/0/%d", apiAddr, time.Now().Unix()+60))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Results
}

func TestName(t *testing.T) {
	// The real name a Debian 12 Apache sent (brief, realclient/vectors.tsv).
	want := "GIXDSLRXFRAXAYLDNBSS6MROGQXDOMJA.FBCGKYTJMFXCSLBRFY3S4MRPGEXDOLRS.FQYTALRUGIXSYTDVMEQDKLRRFQZC4OJO.GE2CYNZV.1795549302.status.modsecurity.org."
	if got := Name(realBeacon, Options{Epoch: 1795549302}); got != want {
		t.Errorf("Name = %s\nwant   %s", got, want)
	}
	if got := Name(realBeacon, Options{Epoch: -1, Zone: "rpc.atomicorp.com", LabelLen: 30}); got != "GIXDSLRXFRAXAYLDNBSS6MROGQXDOM.JAFBCGKYTJMFXCSLBRFY3S4MRPGEXD.OLRSFQYTALRUGIXSYTDVMEQDKLRRFQ.ZC4OJOGE2CYNZV.rpc.atomicorp.com." {
		t.Errorf("Windows name without epoch = %s", got)
	}
	now := time.Now().Unix()
	if got := Name(realBeacon, Options{}); got != Name(realBeacon, Options{Epoch: now}) && got != Name(realBeacon, Options{Epoch: now + 1}) {
		t.Errorf("default epoch is not now: %s", got)
	}
}

func TestSendToStatusengine(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	apiAddr := startServer(t, "127.0.0.1", port)
	res, err := Send(context.Background(), realBeacon, Options{Server: "127.0.0.1:" + port, Epoch: 1795549302, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Addrs) != 1 || res.Addrs[0] != netip.MustParseAddr("192.0.2.10") || res.Rcode != dns.RcodeSuccess {
		t.Errorf("result %+v", res)
	}
	rows := stored(t, apiAddr)
	if len(rows) != 1 || rows[0]["beacon"] != realBeacon {
		t.Errorf("stored %v, want the report", rows)
	}
}

func TestSendNoAddress(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	startServer(t, "127.0.0.1", port)
	// The server is not authoritative for another zone: REFUSED, no A.
	_, err := Send(context.Background(), realBeacon, Options{Server: "127.0.0.1:" + port, Zone: "example.org", Timeout: 2 * time.Second})
	if !errors.Is(err, ErrNoAddress) {
		t.Errorf("err = %v, want ErrNoAddress", err)
	}

	// Nobody listening: an error that is not ErrNoAddress.
	_, err = Send(context.Background(), realBeacon, Options{Server: "127.0.0.1:" + freePort(t, "127.0.0.1"), Timeout: 200 * time.Millisecond})
	if err == nil || errors.Is(err, ErrNoAddress) {
		t.Errorf("err = %v, want a network error", err)
	}
}

// The query on the wire is what gethostbyname sends: one question of type A,
// RD set, no OPT record.
func TestSendWire(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *dns.Msg, 4)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		got <- r
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })

	if _, err := Send(context.Background(), realBeacon, Options{Server: pc.LocalAddr().String(), Epoch: 1795549302}); err != nil {
		t.Fatal(err)
	}
	q := <-got
	if len(q.Question) != 1 || q.Question[0].Qtype != dns.TypeA || !q.RecursionDesired || q.IsEdns0() != nil || len(q.Extra) != 0 {
		t.Errorf("query on the wire: %v", q)
	}
	if len(got) != 0 {
		t.Errorf("%d more queries, want one", len(got))
	}
}

// Through the system resolver: a resolv.conf naming a statusengine server on
// port 53 of another loopback address (binding 53 needs root).
func TestSendSystemResolver(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to bind port 53 (CI runs as root)")
		}
		t.Skip("needs root to bind port 53")
	}
	host := "127.53.0.1"
	if pc, err := net.ListenPacket("udp", host+":53"); err != nil {
		t.Skipf("port 53 of %s is taken (a resolver listening on all addresses?): %v", host, err)
	} else {
		pc.Close()
	}
	apiAddr := startServer(t, host, "53")
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(conf, []byte("nameserver 127.53.0.2\nnameserver "+host+"\noptions timeout:1 attempts:1\n"), 0o644)
	res, err := Send(context.Background(), realBeacon, Options{ResolvConf: conf, Epoch: 1795549302})
	if err != nil {
		t.Fatal(err)
	}
	// The first nameserver does not answer: the second does, as with libc.
	if res.Server != host+":53" || res.Retries != 1 || len(res.Addrs) != 1 {
		t.Errorf("result %+v", res)
	}
	if rows := stored(t, apiAddr); len(rows) != 1 {
		t.Errorf("stored %d reports, want 1", len(rows))
	}
	if _, err := Send(context.Background(), realBeacon, Options{ResolvConf: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing resolv.conf is not an error")
	}
}
