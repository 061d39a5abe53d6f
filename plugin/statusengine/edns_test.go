package statusengine

import (
	"fmt"
	"path/filepath"
	"testing"

	ctest "github.com/coredns/coredns/test"

	"github.com/miekg/dns"
)

// EDNS as a real CoreDNS server with the plugin answers it on loopback
// (RFC 6891): a version above 0 gets BADVERS with an OPT record of version 0
// (CoreDNS's server does that before any plugin), two OPT records or one
// outside the additional section get FORMERR (the plugin), and a client
// cookie (RFC 7873) is answered as usual, without a server cookie.
func TestEDNS(t *testing.T) {
	AddDirective()
	corefile := fmt.Sprintf(`status.modsecurity.org:0 {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.1
        db %s
        api off
    }
}`, filepath.Join(t.TempDir(), "se.db"))
	srv, udp, _, err := ctest.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	opt := func(version uint8, opts ...dns.EDNS0) *dns.OPT {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		o.SetVersion(version)
		o.Option = opts
		return o
	}
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}
	tests := []struct {
		name    string
		extra   []dns.RR
		answer  []dns.RR // the question's own section for an OPT out of place
		rcode   int
		optVer  int // version of the reply's OPT record; -1: no OPT
		answers int
	}{
		{name: "no EDNS", rcode: dns.RcodeSuccess, optVer: -1, answers: 1},
		{name: "version 0", extra: []dns.RR{opt(0)}, rcode: dns.RcodeSuccess, optVer: 0, answers: 1},
		{name: "version 1", extra: []dns.RR{opt(1)}, rcode: dns.RcodeBadVers, optVer: 0},
		{name: "version 255", extra: []dns.RR{opt(255)}, rcode: dns.RcodeBadVers, optVer: 0},
		{name: "two OPT records", extra: []dns.RR{opt(0), opt(0)}, rcode: dns.RcodeFormatError, optVer: 0},
		{name: "OPT in the answer section", answer: []dns.RR{opt(0)}, rcode: dns.RcodeFormatError, optVer: -1},
		{name: "client cookie", extra: []dns.RR{opt(0, cookie)}, rcode: dns.RcodeSuccess, optVer: 0, answers: 1},
	}
	for _, tc := range tests {
		m := new(dns.Msg)
		m.SetQuestion(realName, dns.TypeA)
		m.Extra, m.Answer = tc.extra, tc.answer
		r, err := dns.Exchange(m, udp)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if r.Rcode != tc.rcode || len(r.Answer) != tc.answers {
			t.Errorf("%s: %s with %d answers, want %s with %d", tc.name, dns.RcodeToString[r.Rcode], len(r.Answer),
				dns.RcodeToString[tc.rcode], tc.answers)
		}
		o := r.IsEdns0()
		switch {
		case tc.optVer < 0 && o != nil:
			t.Errorf("%s: reply has an OPT record: %v", tc.name, o)
		case tc.optVer >= 0 && o == nil:
			t.Errorf("%s: reply has no OPT record", tc.name)
		case o != nil && int(o.Version()) != tc.optVer:
			t.Errorf("%s: reply's OPT version %d, want %d", tc.name, o.Version(), tc.optVer)
		}
		if o != nil {
			for _, e := range o.Option {
				if e.Option() == dns.EDNS0COOKIE {
					t.Errorf("%s: reply carries a cookie %v; CoreDNS has no server cookies (README)", tc.name, e)
				}
			}
		}
	}
}
