package reliability

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// answerKind is what the answer section must hold.
type answerKind int

const (
	wantA      answerKind = iota // the configured A record
	wantNODATA                   // empty answer, SOA in authority
	wantEmpty                    // empty answer, nothing checked in authority
	wantSOA                      // the apex SOA
	wantNS                       // the apex NS
)

// badCase is one question to the running server and what it must do.
type badCase struct {
	name    string
	qname   string
	qtype   uint16
	typeSet bool // qtype 0 (None) is meant, not the default A
	qclass  uint16
	net     string // "udp" (default) or "tcp"
	edns    []dns.EDNS0
	ednsVer uint8
	twoOPT  bool // a second OPT record (RFC 6891: FORMERR)
	opcode  int  // dns.OpcodeQuery unless set
	rcode   int
	answer  answerKind
	outcome map[string]float64 // counter deltas; nil means none
	ecs     string             // the ECS prefix the stored record must hold; "none": none
}

var epochSeq int64 = 1795549302

// nextName is a fresh valid report name: a new start of installation i.
func nextName(i int) string {
	epochSeq++
	return reportName(i, epochSeq)
}

func stored1() map[string]float64 { return map[string]float64{"stored": 1} }

// TestBadInputs asks the running server every kind of name, type, class,
// EDNS option and transport a hostile or broken client can send, and checks
// the rcode, the answer and the outcome counter of each, one at a time.
func TestBadInputs(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t)})
	s.start()
	addr := s.dnsAddr()

	real := nextName(1)
	labels := dns.SplitDomainName(real)
	partial := strings.Join(labels[1:], ".") + "."
	long63 := strings.Repeat("A", 63)
	// 255 octets on the wire, the most a name can hold: 253 in presentation.
	long255 := maxName()

	cases := []badCase{
		{name: "valid report", qname: real, rcode: dns.RcodeSuccess, answer: wantA, outcome: stored1()},
		{name: "same report again", qname: real, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"duplicate": 1}},
		{name: "0x20 case of a report", qname: flipCase(nextName(1)), rcode: dns.RcodeSuccess, answer: wantA, outcome: stored1()},
		{name: "report without epoch", qname: codec.Encode(beacon(2), -1, zone), rcode: dns.RcodeSuccess, answer: wantA, outcome: stored1()},
		{name: "non-base32 label", qname: "HELLO1WORLD.1795549302." + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "non-base32 punctuation", qname: "GIXDSLRX-FRAXAYLD.1795549302." + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "= padding", qname: "MFRGG===.1795549302." + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "padded real name", qname: padded(nextName(3)), rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "NUL byte in a label", qname: `GIXD\000SLRX.1795549302.` + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "binary bytes in a label", qname: `\255\001\127\010\027[0m.1795549302.` + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "escaped dot in a label", qname: `GIXD\.SLRX.1795549302.` + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "63-byte label", qname: long63 + ".1795549302." + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{outcomeOf(long63 + ".1795549302." + zone): 1}},
		{name: "63-byte label, no epoch", qname: long63 + "." + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "255-octet name", qname: long255, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "epoch of 13 digits", qname: "GIXDSLRX.1795549302000." + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "one label short (minimisation)", qname: partial, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"partial": 1}},
		{name: "epoch label only (minimisation)", qname: "1795549302." + zone, rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"partial": 1}},
		{name: "apex A", qname: zone, rcode: dns.RcodeSuccess, answer: wantA},
		{name: "apex SOA", qname: zone, qtype: dns.TypeSOA, rcode: dns.RcodeSuccess, answer: wantSOA},
		{name: "apex NS", qname: zone, qtype: dns.TypeNS, rcode: dns.RcodeSuccess, answer: wantNS},
		{name: "apex TXT", qname: zone, qtype: dns.TypeTXT, rcode: dns.RcodeSuccess, answer: wantNODATA},
		{name: "not our zone", qname: "example.com.", rcode: dns.RcodeRefused, answer: wantEmpty},
		// CoreDNS refuses every class but IN before any plugin runs (unless
		// the chaos plugin is in the block), so nothing is counted or stored.
		{name: "class CH", qname: nextName(4), qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused, answer: wantEmpty},
		{name: "class HS", qname: nextName(4), qclass: dns.ClassHESIOD, rcode: dns.RcodeRefused, answer: wantEmpty},
		{name: "class NONE", qname: nextName(4), qclass: dns.ClassNONE, rcode: dns.RcodeRefused, answer: wantEmpty},
		{name: "class ANY", qname: nextName(5), qclass: dns.ClassANY, rcode: dns.RcodeRefused, answer: wantEmpty},
		{name: "TCP report", qname: nextName(6), net: "tcp", rcode: dns.RcodeSuccess, answer: wantA, outcome: stored1()},
		{name: "TCP malformed", qname: "MFRGG===.1795549302." + zone, net: "tcp", rcode: dns.RcodeSuccess, answer: wantA, outcome: map[string]float64{"malformed": 1}},
		{name: "TCP class CH", qname: nextName(6), net: "tcp", qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused, answer: wantEmpty},
		{name: "EDNS cookie, NSID, padding, unknown option", qname: nextName(7), rcode: dns.RcodeSuccess, answer: wantA, outcome: stored1(),
			edns: []dns.EDNS0{
				&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
				&dns.EDNS0_NSID{Code: dns.EDNS0NSID},
				&dns.EDNS0_PADDING{Padding: make([]byte, 100)},
				&dns.EDNS0_LOCAL{Code: 65001, Data: []byte("\x00\xff\n\x1b[31m")},
				&dns.EDNS0_LOCAL{Code: 65535},
			}},
		{name: "EDNS version 1", qname: nextName(8), ednsVer: 1, rcode: dns.RcodeBadVers, answer: wantEmpty},
		{name: "two OPT records", qname: nextName(8), twoOPT: true, rcode: dns.RcodeFormatError, answer: wantEmpty,
			outcome: map[string]float64{"malformed": 1}},
		{name: "two ECS options", qname: nextName(9), rcode: dns.RcodeSuccess, answer: wantA, outcome: stored1(), ecs: "198.51.100.0/24",
			edns: []dns.EDNS0{ecsOption(1, 24, "198.51.100.7"), ecsOption(2, 56, "2001:db8::1")}},
	}

	// Every qtype for one report name: A and ANY carry the address, the
	// rest NODATA; the first question stores, the others are duplicates.
	qtypes := make([]int, 0, len(dns.TypeToString))
	for qt := range dns.TypeToString {
		qtypes = append(qtypes, int(qt))
	}
	sort.Ints(qtypes)
	every := nextName(10)
	for i, qt := range qtypes {
		c := badCase{name: "qtype " + dns.TypeToString[uint16(qt)], qname: every, qtype: uint16(qt), typeSet: true, rcode: dns.RcodeSuccess, answer: wantNODATA,
			outcome: map[string]float64{"duplicate": 1}}
		if i == 0 {
			c.outcome = stored1()
		}
		switch uint16(qt) {
		case dns.TypeA, dns.TypeANY:
			c.answer = wantA
		}
		cases = append(cases, c)
	}

	// ECS of every prefix length of both families (miekg/dns sends the
	// address cut to its prefix, as RFC 7871 asks): stored with the subnet;
	// a source prefix of 0 asks that no subnet be used (7.1.2): none stored.
	ecsOf := func(addr string, bits int) string {
		if bits == 0 {
			return "none"
		}
		p, _ := netip.MustParseAddr(addr).Prefix(bits)
		return p.String()
	}
	for bits := 0; bits <= 32; bits++ {
		cases = append(cases, badCase{name: fmt.Sprintf("ECS v4 /%d", bits), qname: nextName(100 + bits), rcode: dns.RcodeSuccess, answer: wantA,
			outcome: stored1(), ecs: ecsOf("203.0.113.77", bits), edns: []dns.EDNS0{ecsOption(1, uint8(bits), "203.0.113.77")}})
	}
	for bits := 0; bits <= 128; bits++ {
		cases = append(cases, badCase{name: fmt.Sprintf("ECS v6 /%d", bits), qname: nextName(200 + bits), rcode: dns.RcodeSuccess, answer: wantA,
			outcome: stored1(), ecs: ecsOf("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", bits),
			edns: []dns.EDNS0{ecsOption(2, uint8(bits), "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")}})
	}
	// Invalid ECS (RFC 7871 §6 says FORMERR): a v4 prefix over 32, a v6
	// prefix over 128, family 0 and 3, an address longer than the prefix
	// needs, an empty option. miekg/dns refuses to pack these, so they go
	// as raw option bytes; the server's parser then fails on the message.
	for _, bad := range []struct {
		name string
		data []byte
	}{
		{"v4 /33", rawECS(1, 33, []byte{203, 0, 113, 77, 1})},
		{"v4 /40 with 4 bytes", rawECS(1, 40, []byte{203, 0, 113, 77})},
		{"v6 /129", rawECS(2, 129, make([]byte, 17))},
		{"family 3", rawECS(3, 24, []byte{1, 2, 3})},
		{"empty", nil},
		{"one byte", []byte{0}},
	} {
		cases = append(cases, badCase{name: "invalid ECS " + bad.name, qname: nextName(400), rcode: dns.RcodeFormatError, answer: wantEmpty, outcome: nil,
			edns: []dns.EDNS0{&dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: bad.data}}})
	}
	// Options the parser takes but RFC 7871 6 answers with FORMERR, which
	// the plugin gives (and counts as malformed, storing nothing): address
	// bits past the prefix, and an address field longer or shorter than
	// the prefix needs. Each is sent alone and beside other options.
	for _, bad := range []struct {
		name string
		data []byte
	}{
		{"v4 /24 with host bits", rawECS(1, 24, []byte{203, 0, 113, 77})},
		{"v6 /44 with host bits", rawECS(2, 44, []byte{0x20, 0x01, 0x0d, 0xb8, 0xaa, 0xab})},
		{"v4 /8 with 4 address bytes", rawECS(1, 8, []byte{10, 0, 0, 0})},
		{"v4 /24 with 2 address bytes", rawECS(1, 24, []byte{203, 0})},
		{"v6 /56 with 16 address bytes", rawECS(2, 56, append([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0}, make([]byte, 9)...))},
		{"v4 /0 with an address byte", rawECS(1, 0, []byte{0})},
	} {
		for _, others := range [][]dns.EDNS0{nil, {&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}, &dns.EDNS0_PADDING{Padding: make([]byte, 7)}}} {
			edns := append([]dns.EDNS0{&dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: bad.data}}, others...)
			cases = append(cases, badCase{name: fmt.Sprintf("ECS %s (%d more options)", bad.name, len(others)), qname: nextName(403), rcode: dns.RcodeFormatError,
				answer: wantEmpty, outcome: map[string]float64{"malformed": 1}, edns: edns})
		}
	}

	// Family 0 with prefix 0 is what dig sends for +subnet=0 ("no subnet",
	// RFC 7871 7.1.1): stored with none. Valid ECS beside other options is
	// stored with its subnet.
	cases = append(cases,
		badCase{name: "ECS family 0 /0", qname: nextName(401), rcode: dns.RcodeSuccess, answer: wantA, outcome: stored1(), ecs: "none",
			edns: []dns.EDNS0{&dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: rawECS(0, 0, nil)}}},
		badCase{name: "ECS v4 /8 with its one address byte", qname: nextName(402), rcode: dns.RcodeSuccess, answer: wantA, outcome: stored1(), ecs: "10.0.0.0/8",
			edns: []dns.EDNS0{&dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: rawECS(1, 8, []byte{10})}}},
		badCase{name: "ECS v4 /22 after a cookie and before padding", qname: nextName(404), rcode: dns.RcodeSuccess, answer: wantA, outcome: stored1(), ecs: "198.51.100.0/22",
			edns: []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
				&dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: rawECS(1, 22, []byte{198, 51, 100})}, &dns.EDNS0_PADDING{Padding: make([]byte, 30)}}},
		// Only a QUERY is a report: a NOTIFY (which miekg/dns passes to the
		// plugins) gets NOTIMP (RFC 8906 3.1.4) and is not stored.
		badCase{name: "NOTIFY of a report name", qname: nextName(405), opcode: dns.OpcodeNotify, rcode: dns.RcodeNotImplemented, answer: wantEmpty,
			outcome: map[string]float64{"malformed": 1}},
		badCase{name: "NOTIFY over TCP", qname: nextName(406), net: "tcp", opcode: dns.OpcodeNotify, rcode: dns.RcodeNotImplemented, answer: wantEmpty,
			outcome: map[string]float64{"malformed": 1}},
		// The other opcodes miekg/dns refuses itself, before any plugin.
		badCase{name: "UPDATE of a report name", qname: nextName(407), opcode: dns.OpcodeUpdate, rcode: dns.RcodeNotImplemented, answer: wantEmpty},
		badCase{name: "IQUERY of a report name", qname: nextName(408), opcode: dns.OpcodeIQuery, rcode: dns.RcodeNotImplemented, answer: wantEmpty},
	)

	ecsWant := map[string]string{} // lower-case name -> stored ECS
	tried := 0
	for _, tc := range cases {
		before := s.outcomes()
		r := exchange(t, addr, tc)
		tried++
		after := s.outcomes()
		check(t, tc, r)
		want := tc.outcome
		if want == nil {
			want = map[string]float64{}
		}
		if got := delta(before, after); !equalCounts(got, want) {
			t.Errorf("%s: outcome counter delta %v, want %v", tc.name, got, want)
		}
		if tc.ecs != "" {
			w := tc.ecs
			if w == "none" { // stored without a subnet
				w = ""
			}
			ecsWant[strings.ToLower(tc.qname)] = w
		}
	}

	// Raw packets: empty, short, truncated, garbage. The server answers
	// FORMERR or nothing, counts nothing, and goes on answering.
	raws := rawPackets()
	rcodes := map[string]int{}
	before := s.outcomes()
	for _, p := range raws {
		rcode, answered := sendRaw(t, addr, p.data)
		tried++
		rcodes[dns.RcodeToString[rcode]+map[bool]string{false: "(none)"}[answered]]++
		// CoreDNS answers SERVFAIL to a message without a question.
		if answered && rcode != dns.RcodeFormatError && rcode != dns.RcodeRefused && rcode != dns.RcodeNotImplemented && rcode != dns.RcodeServerFailure {
			t.Errorf("raw %s: rcode %s, want FORMERR or no answer", p.name, dns.RcodeToString[rcode])
		}
		if r := query(t, addr, "udp", zone, dns.TypeSOA, dns.ClassINET); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("after raw %s: the server no longer answers: %v", p.name, r)
		}
	}
	if d := delta(before, s.outcomes()); len(d) != 0 {
		t.Errorf("raw packets changed the outcome counters: %v", d)
	}
	t.Logf("raw packets: answers by rcode %v", rcodes)
	for _, p := range noisePackets() {
		sendRaw(t, addr, p.data)
		tried++
	}
	if r := query(t, addr, "udp", zone, dns.TypeSOA, dns.ClassINET); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after noise packets the server no longer answers: %v", r)
	}
	// Truncated TCP: a length prefix promising more than is sent, then close.
	for _, p := range raws[:4] {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(p.data)+10))
		conn.Write(append(l[:], p.data...))
		conn.Close()
		tried++
	}
	if r := query(t, addr, "tcp", zone, dns.TypeSOA, dns.ClassINET); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after truncated TCP: %v", r)
	}
	final := s.outcomes()
	t.Logf("bad inputs tried: %d questions and packets; outcomes now %v", tried, final)

	if !s.running() {
		t.Fatalf("server died: %s", s.out)
	}
	s.stop()
	checkFile(t, s.cfg.DB)
	st, err := store.Open(s.cfg.DB, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := map[string]string{}
	st.Each(time.Unix(0, 0), time.Now().Add(time.Hour), 0, func(r *record.Record) error {
		got[strings.ToLower(codec.Encode(r.Report.Beacon, r.Report.Epoch, zone))] = ecsString(r.ECS)
		return nil
	})
	for n, want := range ecsWant {
		if got[n] != want {
			t.Errorf("record of %s: ECS %q, want %q", n, got[n], want)
		}
	}
	// Every stored outcome is one record, and nothing else is.
	if st.Count() != int64(final["stored"]) {
		t.Errorf("%d records stored, want %v (one per stored outcome)", st.Count(), final["stored"])
	}
}

func ecsString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func equalCounts(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// outcomeOf is the codec's own judgement of an odd name, for cases where
// "partial" and "malformed" are both defensible (a 63-character label has
// a length no encoder makes, so above an epoch it may be a Windows tail).
func outcomeOf(name string) string {
	_, err := codec.Decode(name, zone)
	if err == nil {
		return "stored"
	}
	return codec.Outcome(err)
}

func exchange(t *testing.T, addr string, tc badCase) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	qt := tc.qtype
	if qt == 0 && !tc.typeSet {
		qt = dns.TypeA
	}
	m.SetQuestion(tc.qname, qt)
	m.RecursionDesired = true
	m.Opcode = tc.opcode
	if tc.qclass != 0 {
		m.Question[0].Qclass = tc.qclass
	}
	if tc.edns != nil || tc.ednsVer != 0 {
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.SetVersion(tc.ednsVer)
		opt.Option = tc.edns
	}
	if tc.twoOPT {
		m.SetEdns0(1232, false)
		m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 512}})
	}
	netw := tc.net
	if netw == "" {
		netw = "udp"
	}
	c := &dns.Client{Net: netw, Timeout: time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		if tc.rcode == -1 {
			return nil // no answer is acceptable here
		}
		t.Fatalf("%s: %v", tc.name, err)
	}
	return r
}

func check(t *testing.T, tc badCase, r *dns.Msg) {
	t.Helper()
	if r == nil {
		return
	}
	if tc.rcode == -1 {
		t.Logf("%s: rcode %s", tc.name, dns.RcodeToString[r.Rcode])
		switch r.Rcode {
		case dns.RcodeFormatError, dns.RcodeRefused, dns.RcodeNotImplemented, dns.RcodeSuccess:
		default:
			t.Errorf("%s: rcode %s", tc.name, dns.RcodeToString[r.Rcode])
		}
		return
	}
	if r.Rcode != tc.rcode {
		t.Errorf("%s: rcode %s, want %s", tc.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
		return
	}
	if len(r.Question) == 1 && tc.qname != "" && r.Question[0].Name != tc.qname {
		t.Errorf("%s: question echoed as %q", tc.name, r.Question[0].Name)
	}
	switch tc.answer {
	case wantA:
		if len(r.Answer) != 1 {
			t.Errorf("%s: answer %v, want one A", tc.name, r.Answer)
			return
		}
		a, ok := r.Answer[0].(*dns.A)
		if !ok || a.A.String() != "192.0.2.10" || a.Hdr.Name != tc.qname || !r.Authoritative {
			t.Errorf("%s: answer %v (aa %v)", tc.name, r.Answer[0], r.Authoritative)
		}
	case wantNODATA:
		if len(r.Answer) != 0 || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("%s: want NODATA with the SOA, got answer %v authority %v", tc.name, r.Answer, r.Ns)
		}
	case wantEmpty:
		if len(r.Answer) != 0 {
			t.Errorf("%s: answer %v, want none", tc.name, r.Answer)
		}
	case wantSOA:
		if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("%s: answer %v, want the SOA", tc.name, r.Answer)
		}
	case wantNS:
		if len(r.Answer) == 0 || r.Answer[0].Header().Rrtype != dns.TypeNS {
			t.Errorf("%s: answer %v, want NS", tc.name, r.Answer)
		}
	}
}

// maxName builds a name of exactly 255 wire octets under the zone out of
// base32 letters.
func maxName() string {
	left := 253 - len(zone) // presentation length without the final dot, less the zone
	var labels []string
	for left > 0 {
		n := min(63, left-1) // the label plus its dot
		if n <= 0 {
			break
		}
		labels = append(labels, strings.Repeat("B", n))
		left -= n + 1
	}
	name := strings.Join(labels, ".") + "." + zone
	if _, ok := dns.IsDomainName(name); !ok {
		panic("maxName: " + name)
	}
	return name
}

func flipCase(s string) string {
	b := []byte(s)
	for i := range b {
		if i%2 == 0 {
			if b[i] >= 'a' && b[i] <= 'z' {
				b[i] -= 32
			} else if b[i] >= 'A' && b[i] <= 'Z' {
				b[i] += 32
			}
		}
	}
	return string(b)
}

// padded adds RFC 4648 '=' padding to the data labels of a report name.
func padded(name string) string {
	labels := dns.SplitDomainName(name)
	n := len(labels) - 4 // epoch and three zone labels
	last := labels[n-1]
	if pad := (8 - len(last)%8) % 8; pad > 0 {
		labels[n-1] = last + strings.Repeat("=", pad)
	} else {
		labels[n-1] = last + "========"
	}
	return strings.Join(labels, ".") + "."
}

func ecsOption(family uint16, bits uint8, addr string) *dns.EDNS0_SUBNET {
	ip := net.ParseIP(addr)
	if family == 1 {
		ip = ip.To4()
	}
	return &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: family, SourceNetmask: bits, Address: ip}
}

func rawECS(family uint16, bits uint8, addr []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, family)
	b = append(b, bits, 0)
	return append(b, addr...)
}

type rawPacket struct {
	name string
	data []byte
}

// rawPackets are UDP payloads no well-behaved client sends.
func rawPackets() []rawPacket {
	m := new(dns.Msg)
	m.SetQuestion(reportName(9999, 1795549302), dns.TypeA)
	valid, _ := m.Pack()

	m2 := new(dns.Msg)
	m2.SetQuestion(reportName(9998, 1795549302), dns.TypeA)
	m2.Question = append(m2.Question, dns.Question{Name: zone, Qtype: dns.TypeA, Qclass: dns.ClassINET})
	two, _ := m2.Pack()

	resp := append([]byte(nil), valid...)
	resp[2] |= 0x80 // QR: a response, not a question

	noQuestion := append([]byte(nil), valid[:12]...)
	pointerLoop := append(append([]byte(nil), valid[:12]...), 0xc0, 12, 0, 1, 0, 1)

	longName := append([]byte(nil), valid[:12]...)
	for range 5 { // five 63-octet labels: 320 octets, over the 255 limit
		longName = append(longName, 63)
		longName = append(longName, []byte(strings.Repeat("A", 63))...)
	}
	longName = append(longName, 0, 0, 1, 0, 1)

	ps := []rawPacket{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"11 bytes", valid[:11]},
		{"header only, qdcount 1", noQuestion},
		{"cut in the name", valid[:20]},
		{"cut in the qtype", valid[:len(valid)-3]},
		{"two questions", two},
		{"a response", resp},
		{"compression pointer loop", pointerLoop},
		{"name over 255 octets", longName},
		{"opcode 15", func() []byte { b := append([]byte(nil), valid...); b[2] |= 0x78; return b }()},
	}
	return ps
}

// noisePackets are random bytes and a valid query with bytes flipped: some
// of them may still be a question, so only survival is checked.
func noisePackets() []rawPacket {
	m := new(dns.Msg)
	m.SetQuestion(reportName(9997, 1795549302), dns.TypeA)
	valid, _ := m.Pack()
	rnd := rand.New(rand.NewPCG(5, 5))
	var ps []rawPacket
	for i := range 100 {
		b := make([]byte, 1+rnd.IntN(512))
		for j := range b {
			b[j] = byte(rnd.UintN(256))
		}
		ps = append(ps, rawPacket{fmt.Sprintf("random %d", i), b})
	}
	for i := range 200 { // a valid query with bytes flipped
		b := append([]byte(nil), valid...)
		for range 1 + rnd.IntN(4) {
			b[rnd.IntN(len(b))] = byte(rnd.UintN(256))
		}
		ps = append(ps, rawPacket{fmt.Sprintf("flipped %d", i), b})
	}
	return ps
}

// sendRaw sends one UDP payload and reads the answer if one comes soon.
func sendRaw(t *testing.T, addr string, p []byte) (rcode int, answered bool) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(p)
	conn.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil || n < 12 {
		return 0, false
	}
	return int(buf[3] & 0x0f), true
}
