package statusengine

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

const (
	zone = "status.modsecurity.org."
	// realName is what ModSecurity 2.9.7 on Debian 12 resolved (captured).
	realName = "GIXDSLRXFRAXAYLDNBSS6MROGQXDOMJA.FBCGKYTJMFXCSLBRFY3S4MRPGEXDOLRS.FQYTALRUGIXSYTDVMEQDKLRRFQZC4OJO.GE2CYNZV.1795549302.status.modsecurity.org."
	// realName0x20 is the same report as Unbound sent it, with its own epoch.
	realName0x20 = "GIXdSlRxFraXaYlDNbss6mROgqxdoMjA.fBCgKyTjmFxCsLbrfy3S4MrPgExDOlrs.FqytalrUgIxsytDVMeQdKlRRFqzc4Ojo.GE2cyNzV.1795549419.sTAtUs.mOdsEcURity.Org."
)

func newTestEngine(t *testing.T) *StatusEngine {
	t.Helper()
	se := &StatusEngine{
		Zones:   []string{zone},
		Next:    test.NextHandler(dns.RcodeRefused, nil),
		answers: answers{a: []net.IP{net.ParseIP("192.0.2.1").To4()}, aaaa: []net.IP{net.ParseIP("2001:db8::1")}, ttl: 60, serial: 1},
	}
	se.answers.build(se.Zones)
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	se.store = st
	return se
}

func TestServeDNS(t *testing.T) {
	se := newTestEngine(t)
	soa := test.SOA("status.modsecurity.org. 60 IN SOA ns1.status.modsecurity.org. hostmaster.status.modsecurity.org. 1 7200 1800 86400 60")
	tests := []test.Case{
		{Qname: realName, Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A(realName + " 60 IN A 192.0.2.1")}},
		// 0x20: the answer echoes the question's letter case byte for byte.
		{Qname: realName0x20, Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A(realName0x20 + " 60 IN A 192.0.2.1")}},
		{Qname: realName, Qtype: dns.TypeAAAA, Authoritative: true,
			Answer: []dns.RR{test.AAAA(realName + " 60 IN AAAA 2001:db8::1")}},
		// QNAME minimisation: partial names are answered like any other name.
		{Qname: "1795549419.sTAtus.MoDsECuriTY.oRG.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("1795549419.sTAtus.MoDsECuriTY.oRG. 60 IN A 192.0.2.1")}},
		{Qname: "gE2CyNzv.1795549419.sTaTus.MOdsecURitY.ORG.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("gE2CyNzv.1795549419.sTaTus.MOdsecURitY.ORG. 60 IN A 192.0.2.1")}},
		{Qname: "not-base32!.status.modsecurity.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("not-base32!.status.modsecurity.org. 60 IN A 192.0.2.1")}},
		// The apex: SOA and NS for delegation, A like every name, NODATA otherwise.
		{Qname: zone, Qtype: dns.TypeSOA, Authoritative: true, Answer: []dns.RR{soa}},
		{Qname: zone, Qtype: dns.TypeNS, Authoritative: true,
			Answer: []dns.RR{test.NS("status.modsecurity.org. 60 IN NS ns1.status.modsecurity.org.")},
			Extra:  []dns.RR{test.A("ns1.status.modsecurity.org. 60 IN A 127.0.0.1")}}, // glue: the address asked
		{Qname: zone, Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("status.modsecurity.org. 60 IN A 192.0.2.1")}},
		{Qname: zone, Qtype: dns.TypeTXT, Authoritative: true, Ns: []dns.RR{soa}},
		{Qname: realName, Qtype: dns.TypeMX, Authoritative: true, Ns: []dns.RR{soa}},
		{Qname: realName, Qtype: dns.TypeNS, Authoritative: true, Ns: []dns.RR{soa}},
		// Outside the zone: the next plugin decides.
		{Qname: "example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
		{Qname: "xstatus.modsecurity.org.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		m := tc.Msg()
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rcode, err := se.ServeDNS(context.Background(), rec, m)
		if err != nil {
			t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
			continue
		}
		if tc.Rcode != dns.RcodeSuccess { // handed to the next plugin, which wrote nothing
			if rcode != tc.Rcode || rec.Msg != nil {
				t.Errorf("%s: rcode %d, reply %v; want %d from the next plugin", tc.Qname, rcode, rec.Msg, tc.Rcode)
			}
			continue
		}
		if rec.Msg == nil {
			t.Errorf("%s: no reply", tc.Qname)
			continue
		}
		if rec.Msg.Question[0].Name != tc.Qname {
			t.Errorf("question not echoed: %q, want %q", rec.Msg.Question[0].Name, tc.Qname)
		}
		if err := test.SortAndCheck(rec.Msg, tc); err != nil {
			t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
		}
	}

	// Stored: the real report twice (two client epochs) and nothing from the
	// partial or malformed names; the AAAA query repeated a stored report.
	var got []*record.Record
	se.store.Each(time.Unix(0, 0), time.Now().Add(time.Minute), 0, func(r *record.Record) error { got = append(got, r); return nil })
	if len(got) != 2 {
		t.Fatalf("stored %d records, want 2", len(got))
	}
	for i, want := range []int64{1795549302, 1795549419} {
		r := got[i]
		if r.Report.Epoch != want || r.Report.Modsec != "2.9.7" || r.Report.Server != "Apache/2.4.71 (Debian)" || r.Zone != zone {
			t.Errorf("record %d = %+v", i, r)
		}
		if r.Resolver.String() != "10.240.0.1" { // test.ResponseWriter's remote address
			t.Errorf("record %d resolver = %v", i, r.Resolver)
		}
	}
}

func TestServeDNSClass(t *testing.T) {
	se := newTestEngine(t)
	m := new(dns.Msg)
	m.SetQuestion(realName, dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	// REFUSED is an rcode CoreDNS's server writes itself (plugin.ClientWrite):
	// the plugin returns it and writes nothing, or the client gets two answers.
	if rcode, _ := se.ServeDNS(context.Background(), rec, m); rcode != dns.RcodeRefused || rec.Msg != nil {
		t.Fatalf("class CH: rcode %d, wrote %v; want REFUSED returned, nothing written", rcode, rec.Msg)
	}
	if se.store.Count() != 0 {
		t.Errorf("class CH query was stored")
	}
}

// TestServeDNSECS: a valid EDNS Client Subnet is stored; one that breaks
// RFC 7871 6 gets FORMERR and nothing stored; family 0 and prefix 0 are no
// subnet. Each query goes through the wire form, as the server reads it
// (the address field's length is only there).
func TestServeDNSECS(t *testing.T) {
	raw := func(family uint16, bits uint8, addr ...byte) dns.EDNS0 {
		return &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: append([]byte{byte(family >> 8), byte(family), bits, 0}, addr...)}
	}
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}
	tests := []struct {
		name    string
		opts    []dns.EDNS0
		rcode   int
		wantECS string // "none": stored without one; "": nothing stored
	}{
		{"v4 /24", []dns.EDNS0{raw(1, 24, 198, 51, 100)}, dns.RcodeSuccess, "198.51.100.0/24"},
		{"v4 /24 after a cookie", []dns.EDNS0{cookie, raw(1, 24, 198, 51, 100)}, dns.RcodeSuccess, "198.51.100.0/24"},
		{"v6 /56", []dns.EDNS0{raw(2, 56, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 1)}, dns.RcodeSuccess, "2001:db8:0:100::/56"},
		{"family 0 /0", []dns.EDNS0{raw(0, 0)}, dns.RcodeSuccess, "none"},
		{"v4 /0", []dns.EDNS0{raw(1, 0)}, dns.RcodeSuccess, "none"},
		{"host bits set", []dns.EDNS0{raw(1, 24, 198, 51, 100, 77)}, dns.RcodeFormatError, ""},
		{"host bits in the last byte", []dns.EDNS0{raw(1, 22, 198, 51, 101)}, dns.RcodeFormatError, ""},
		{"address too long", []dns.EDNS0{raw(1, 16, 198, 51, 0)}, dns.RcodeFormatError, ""},
		{"address too short", []dns.EDNS0{raw(1, 24, 198, 51)}, dns.RcodeFormatError, ""},
		{"address too long beside a cookie", []dns.EDNS0{raw(1, 8, 10, 0, 0, 0), cookie}, dns.RcodeFormatError, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := newTestEngine(t)
			m := new(dns.Msg)
			m.SetQuestion(realName, dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = tc.opts
			wire, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Unpack(wire); err != nil {
				t.Fatal(err)
			}
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			rcode, _ := se.ServeDNS(context.Background(), rec, m)
			if rec.Msg != nil {
				rcode = rec.Msg.Rcode
			}
			if rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[rcode], dns.RcodeToString[tc.rcode])
			}
			var got *record.Record
			se.store.Each(time.Unix(0, 0), time.Now().Add(time.Minute), 0, func(r *record.Record) error { got = r; return errStop })
			switch {
			case tc.wantECS == "" && got != nil:
				t.Errorf("stored %+v, want nothing", got)
			case tc.wantECS == "":
			case got == nil:
				t.Errorf("nothing stored, want a record with ECS %s", tc.wantECS)
			case tc.wantECS == "none" && got.ECS.IsValid(), tc.wantECS != "none" && got.ECS.String() != tc.wantECS:
				t.Errorf("stored ECS %v, want %s", got.ECS, tc.wantECS)
			}
		})
	}
}

// TestServeDNSNotify: only a QUERY is a report. A NOTIFY (miekg/dns passes
// it to the plugins) gets NOTIMP and stores nothing.
func TestServeDNSNotify(t *testing.T) {
	se := newTestEngine(t)
	m := new(dns.Msg)
	m.SetNotify(realName)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, _ := se.ServeDNS(context.Background(), rec, m)
	if rcode != dns.RcodeNotImplemented || rec.Msg != nil {
		t.Errorf("NOTIFY: rcode %s and reply %v, want NOTIMP written by the server", dns.RcodeToString[rcode], rec.Msg)
	}
	if n := se.store.Count(); n != 0 {
		t.Errorf("NOTIFY stored %d records", n)
	}
}

func TestServeDNSStoreDown(t *testing.T) {
	se := newTestEngine(t)
	se.store.Close() // the disk went away: answers must go on
	m := new(dns.Msg)
	m.SetQuestion(realName, dns.TypeA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	se.ServeDNS(context.Background(), rec, m)
	if rec.Msg == nil || rec.Msg.Rcode != dns.RcodeSuccess || len(rec.Msg.Answer) != 1 {
		t.Fatalf("store down: got %v, want the A answer", rec.Msg)
	}
}

// Name server names inside the zone resolve to the server itself: the
// address the query arrived on, or the addresses given with ns NAME=ADDR.
// They are counted as outcome ns, never as reports.
func TestServeDNSNameServers(t *testing.T) {
	se := newTestEngine(t)
	se.answers.ns = []nsServer{
		{name: "ns1"},
		{name: "ns2", addrs: []net.IP{net.ParseIP("198.51.100.2").To4(), net.ParseIP("2001:db8::2")}},
		{name: "ns3.example.net.", addrs: []net.IP{net.ParseIP("203.0.113.3").To4()}}, // outside: no glue, not ours
	}
	se.answers.build(se.Zones)
	soa := test.SOA("status.modsecurity.org. 60 IN SOA ns1.status.modsecurity.org. hostmaster.status.modsecurity.org. 1 7200 1800 86400 60")
	tests := []struct {
		tc test.Case
		v6 bool // asked over IPv6 (::1), else IPv4 (127.0.0.1)
	}{
		{tc: test.Case{Qname: "ns1.status.modsecurity.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("ns1.status.modsecurity.org. 60 IN A 127.0.0.1")}}},
		// 0x20: any case, echoed.
		{tc: test.Case{Qname: "nS1.StAtus.modsecurity.ORG.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("nS1.StAtus.modsecurity.ORG. 60 IN A 127.0.0.1")}}},
		// Asked over IPv4, the server's own address has no AAAA.
		{tc: test.Case{Qname: "ns1.status.modsecurity.org.", Qtype: dns.TypeAAAA, Authoritative: true, Ns: []dns.RR{soa}}},
		{tc: test.Case{Qname: "ns1.status.modsecurity.org.", Qtype: dns.TypeAAAA, Authoritative: true,
			Answer: []dns.RR{test.AAAA("ns1.status.modsecurity.org. 60 IN AAAA ::1")}}, v6: true},
		{tc: test.Case{Qname: "ns1.status.modsecurity.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{soa}}, v6: true},
		{tc: test.Case{Qname: "ns1.status.modsecurity.org.", Qtype: dns.TypeMX, Authoritative: true, Ns: []dns.RR{soa}}},
		// Explicit addresses, whatever the query arrived on.
		{tc: test.Case{Qname: "ns2.status.modsecurity.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("ns2.status.modsecurity.org. 60 IN A 198.51.100.2")}}, v6: true},
		{tc: test.Case{Qname: "ns2.status.modsecurity.org.", Qtype: dns.TypeANY, Authoritative: true,
			Answer: []dns.RR{test.A("ns2.status.modsecurity.org. 60 IN A 198.51.100.2"), test.AAAA("ns2.status.modsecurity.org. 60 IN AAAA 2001:db8::2")}}},
		// The apex NS set, with glue for the names inside the zone.
		{tc: test.Case{Qname: zone, Qtype: dns.TypeNS, Authoritative: true,
			Answer: []dns.RR{
				test.NS("status.modsecurity.org. 60 IN NS ns1.status.modsecurity.org."),
				test.NS("status.modsecurity.org. 60 IN NS ns2.status.modsecurity.org."),
				test.NS("status.modsecurity.org. 60 IN NS ns3.example.net."),
			},
			Extra: []dns.RR{
				test.A("ns1.status.modsecurity.org. 60 IN A 127.0.0.1"),
				test.A("ns2.status.modsecurity.org. 60 IN A 198.51.100.2"),
				test.AAAA("ns2.status.modsecurity.org. 60 IN AAAA 2001:db8::2"),
			}}},
		// Below a name server name, or a name like one: report names as usual.
		{tc: test.Case{Qname: "x.ns1.status.modsecurity.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("x.ns1.status.modsecurity.org. 60 IN A 192.0.2.1")}}},
		{tc: test.Case{Qname: "ns3.status.modsecurity.org.", Qtype: dns.TypeA, Authoritative: true,
			Answer: []dns.RR{test.A("ns3.status.modsecurity.org. 60 IN A 192.0.2.1")}}},
	}
	nsBefore := counted(outcomeNS)
	malformedBefore := counted(outcomeMalformed)
	for _, tt := range tests {
		var w dns.ResponseWriter = &test.ResponseWriter{}
		if tt.v6 {
			w = &test.ResponseWriter6{}
		}
		rec := dnstest.NewRecorder(w)
		if _, err := se.ServeDNS(context.Background(), rec, tt.tc.Msg()); err != nil {
			t.Errorf("%s %s: %v", tt.tc.Qname, dns.TypeToString[tt.tc.Qtype], err)
			continue
		}
		if rec.Msg == nil {
			t.Errorf("%s: no reply", tt.tc.Qname)
			continue
		}
		if err := test.SortAndCheck(rec.Msg, tt.tc); err != nil {
			t.Errorf("%s %s (v6 %v): %v", tt.tc.Qname, dns.TypeToString[tt.tc.Qtype], tt.v6, err)
		}
	}
	if got := counted(outcomeNS) - nsBefore; got != 8 {
		t.Errorf("outcome ns counted %v times, want 8 (the questions for ns1 and ns2)", got)
	}
	if got := counted(outcomeMalformed) - malformedBefore; got != 2 {
		t.Errorf("outcome malformed counted %v times, want 2 (x.ns1 and ns3)", got)
	}
	if n := se.store.Count(); n != 0 {
		t.Errorf("stored %d records, want 0", n)
	}
}

// A listener on a wildcard address does not know which address a UDP query
// arrived on: the in-zone name server names then get the answer addresses.
func TestServeDNSNameServerWildcard(t *testing.T) {
	se := newTestEngine(t)
	m := new(dns.Msg)
	m.SetQuestion("ns1.status.modsecurity.org.", dns.TypeA)
	rec := dnstest.NewRecorder(wildcardWriter{&test.ResponseWriter{}})
	se.ServeDNS(context.Background(), rec, m)
	if rec.Msg == nil || len(rec.Msg.Answer) != 1 || rec.Msg.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("ns1 A on a wildcard listener: %v, want the answer address 192.0.2.1", rec.Msg)
	}
}

type wildcardWriter struct{ *test.ResponseWriter }

func (wildcardWriter) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv6unspecified, Port: 53} }

// counted reads coredns_statusengine_reports_total of zone for an outcome,
// as ServeDNS counts it without a server in the context.
func counted(outcome string) float64 {
	var m dto.Metric
	reportsTotal.WithLabelValues("", zone, outcome).Write(&m)
	return m.GetCounter().GetValue()
}

// errStop ends an Each early.
var errStop = errors.New("stop")
