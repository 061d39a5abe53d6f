// Package integration runs the statusengine plugin inside a real CoreDNS
// server (in-process, from a Corefile string) and talks to it over loopback.
package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/test"
	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

func init() { statusengine.AddDirective() }

const (
	zone       = "status.modsecurity.org."
	realBeacon = "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75"
)

// freePort finds a loopback port to name in a Corefile: a reload keeps the
// listener only when the address stays the same.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func corefile(dnsPort, apiAddr, db string, ttl int) string {
	return fmt.Sprintf(`status.modsecurity.org:%s {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.10
        ttl %d
        db %s
        api %s
    }
}`, dnsPort, ttl, db, apiAddr)
}

func query(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	return r
}

func compatAmount(t *testing.T, apiAddr string) (int, []map[string]any) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/api/0/%d", apiAddr, time.Now().Unix()+60))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v struct {
		Amount  int              `json:"amount"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("api: %v: %s", err, body)
	}
	return v.Amount, v.Results
}

func TestServeStoreReload(t *testing.T) {
	db := filepath.Join(t.TempDir(), "se.db")
	port, apiAddr := freePort(t), "127.0.0.1:"+freePort(t)
	inst, err := test.CoreDNSServer(corefile(port, apiAddr, db, 60))
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + port

	// A real report, the same start through a 0x20 resolver, and the steps of
	// QNAME minimisation that precede it: all answered, one stored.
	name := codec.Encode(realBeacon, 1795549302, zone)
	names := []string{
		"1795549302.sTAtus.MoDsECuriTY.oRG.",
		"gE2CyNzv.1795549302.sTaTus.MOdsecURitY.ORG.",
		name,
		"GIXdSlRxFraXaYlDNbss6mROgqxdoMjA.fBCgKyTjmFxCsLbrfy3S4MrPgExDOlrs.FqytalrUgIxsytDVMeQdKlRRFqzc4Ojo.GE2cyNzV.1795549302.sTAtUs.mOdsEcURity.Org.",
	}
	for _, n := range names {
		r := query(t, addr, n, dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
			t.Fatalf("%s: %v", n, r)
		}
		if r.Answer[0].Header().Name != n || r.Answer[0].(*dns.A).A.String() != "192.0.2.10" || r.Answer[0].Header().Ttl != 60 {
			t.Errorf("%s: answer %v", n, r.Answer[0])
		}
	}
	if n, rows := compatAmount(t, apiAddr); n != 1 || rows[0]["beacon"] != realBeacon {
		t.Fatalf("before reload: amount %d rows %v; want the one report", n, rows)
	}

	// Reload with another TTL: the store is shared, not opened twice (that
	// would wait for bbolt's lock and fail), and the API stays on its address.
	inst2, err := inst.Restart(test.NewInput(corefile(port, apiAddr, db, 30)))
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	name2 := codec.Encode(realBeacon, 1795549400, zone)
	if r := query(t, addr, name2, dns.TypeA); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 30 {
		t.Fatalf("after reload: %v", r)
	}
	if n, _ := compatAmount(t, apiAddr); n != 2 {
		t.Fatalf("after reload: amount %d, want 2", n)
	}

	// A broken Corefile: the reload fails, the running server goes on.
	if _, err := inst2.Restart(test.NewInput(strings.Replace(corefile(port, apiAddr, db, 30), "ttl 30", "ttl thirty", 1))); err == nil {
		t.Fatal("reload of a broken Corefile succeeded")
	}
	name3 := codec.Encode(realBeacon, 1795549500, zone)
	if r := query(t, addr, name3, dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("after failed reload: %v", r)
	}
	if n, _ := compatAmount(t, apiAddr); n != 3 {
		t.Fatalf("after failed reload: amount %d, want 3", n)
	}

	inst2.Stop()
	inst2.ShutdownCallbacks()

	// The file, read back on its own after shutdown.
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatalf("reopen after shutdown: %v", err)
	}
	defer st.Close()
	var epochs []int64
	st.Each(time.Unix(0, 0), time.Now().Add(time.Minute), 0, func(r *record.Record) error {
		epochs = append(epochs, r.Report.Epoch)
		if r.Report.Server != "Apache/2.4.71 (Debian)" || r.Resolver.String() != "127.0.0.1" {
			t.Errorf("record %+v", r)
		}
		return nil
	})
	if !slices.Equal(epochs, []int64{1795549302, 1795549400, 1795549500}) {
		t.Errorf("stored epochs %v", epochs)
	}
}
