package statusengine

import (
	"net"
	"strings"

	"github.com/miekg/dns"
)

// answers holds what every name of the zones resolves to, plus the synthetic
// apex records that let a parent zone delegate to this server.
type answers struct {
	a, aaaa []net.IP
	ttl     uint32
	ns      []string            // name server names; relative ones are made absolute per zone
	soa     map[string]*dns.SOA // per zone, built at setup
	serial  uint32
}

func (a *answers) build(zones []string) {
	a.soa = make(map[string]*dns.SOA, len(zones))
	for _, z := range zones {
		a.soa[z] = &dns.SOA{
			Hdr:     dns.RR_Header{Name: z, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: a.ttl},
			Ns:      a.nsNames(z)[0],
			Mbox:    "hostmaster." + z,
			Serial:  a.serial,
			Refresh: 7200,
			Retry:   1800,
			Expire:  86400,
			Minttl:  a.ttl,
		}
	}
}

func (a *answers) nsNames(zone string) []string {
	if len(a.ns) == 0 {
		return []string{"ns1." + zone}
	}
	out := make([]string, len(a.ns))
	for i, n := range a.ns {
		if strings.HasSuffix(n, ".") {
			out[i] = n
		} else {
			out[i] = n + "." + zone
		}
	}
	return out
}

// reply answers r, a question for a name in zone. The question is copied as
// sent, so 0x20-randomised letter case comes back unchanged.
func (a *answers) reply(r *dns.Msg, zone string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	q := r.Question[0]
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: a.ttl}
	apex := len(q.Name) == len(zone) // zone matched as a suffix, so equal length means apex

	switch q.Qtype {
	case dns.TypeA, dns.TypeANY:
		hdr.Rrtype = dns.TypeA
		for _, ip := range a.a {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip})
		}
		if q.Qtype == dns.TypeANY {
			hdr.Rrtype = dns.TypeAAAA
			for _, ip := range a.aaaa {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
			}
		}
	case dns.TypeAAAA:
		hdr.Rrtype = dns.TypeAAAA
		for _, ip := range a.aaaa {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
		}
	case dns.TypeSOA:
		if apex {
			soa := *a.soa[zone]
			soa.Hdr.Name = q.Name
			m.Answer = append(m.Answer, &soa)
		}
	case dns.TypeNS:
		if apex {
			hdr.Rrtype = dns.TypeNS
			for _, n := range a.nsNames(zone) {
				m.Answer = append(m.Answer, &dns.NS{Hdr: hdr, Ns: n})
			}
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{a.soa[zone]} // NODATA: the SOA tells resolvers how long to cache it
	}
	return m
}
