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
	ns      []nsServer          // name servers; relative names are made absolute per zone
	soa     map[string]*dns.SOA // per zone, built at setup
	serial  uint32

	// hosts are the name server names that lie inside a zone (lower case,
	// absolute), with their explicit addresses; none means the address the
	// query arrived on. Built at setup.
	hosts map[string][]net.IP
}

// nsServer is one name of the ns property, with the addresses given for it.
type nsServer struct {
	name  string   // lower case; relative names are completed with the zone
	addrs []net.IP // from ns NAME=ADDR,...; none: the server's own address
}

func (a *answers) build(zones []string) {
	a.soa = make(map[string]*dns.SOA, len(zones))
	a.hosts = make(map[string][]net.IP)
	for _, z := range zones {
		servers := a.nsServers(z)
		a.soa[z] = &dns.SOA{
			Hdr:     dns.RR_Header{Name: z, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: a.ttl},
			Ns:      servers[0].name,
			Mbox:    "hostmaster." + z,
			Serial:  a.serial,
			Refresh: 7200,
			Retry:   1800,
			Expire:  86400,
			Minttl:  a.ttl,
		}
		for _, s := range servers {
			if dns.IsSubDomain(z, s.name) {
				a.hosts[s.name] = s.addrs
			}
		}
	}
}

// nsServers are the name servers of zone, with absolute names.
func (a *answers) nsServers(zone string) []nsServer {
	if len(a.ns) == 0 {
		return []nsServer{{name: "ns1." + zone}}
	}
	out := make([]nsServer, len(a.ns))
	for i, s := range a.ns {
		out[i] = s
		if !strings.HasSuffix(s.name, ".") {
			out[i].name = s.name + "." + zone
		}
	}
	return out
}

// isHost tells whether name, in any letter case, is a name server name
// inside a zone. There are one or two: comparing each costs less than a
// lower-cased copy of every query name.
func (a *answers) isHost(name string) bool {
	for h := range a.hosts {
		if len(h) == len(name) && strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// inZoneHosts lists the name server names inside the zones that have no
// explicit addresses: they answer with the address a query arrived on.
func (a *answers) inZoneHosts() []string {
	var out []string
	for n, addrs := range a.hosts {
		if len(addrs) == 0 {
			out = append(out, n)
		}
	}
	return out
}

// hostAddrs is what name server name host resolves to for a query that
// arrived on local: its explicit addresses, else local, else (a listener on
// a wildcard address does not know which of its addresses a UDP query
// arrived on) the answer addresses.
func (a *answers) hostAddrs(host string, local net.Addr) (v4, v6 []net.IP) {
	addrs := a.hosts[host]
	if len(addrs) == 0 {
		if ip := localIP(local); ip != nil {
			addrs = []net.IP{ip}
		}
	}
	if len(addrs) == 0 {
		return a.a, a.aaaa
	}
	for _, ip := range addrs {
		if v := ip.To4(); v != nil {
			v4 = append(v4, v)
		} else {
			v6 = append(v6, ip)
		}
	}
	return v4, v6
}

// localIP is the address of a listener or connection, nil when it is not
// one address (a wildcard UDP listener).
func localIP(addr net.Addr) net.IP {
	var ip net.IP
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	if ip == nil || ip.IsUnspecified() {
		return nil
	}
	if v := ip.To4(); v != nil {
		return v
	}
	return ip
}

// reply answers r, a question for a name in zone that arrived on local. host
// says the name is one of the in-zone name server names. The question is
// copied as sent, so 0x20-randomised letter case comes back unchanged.
func (a *answers) reply(r *dns.Msg, zone string, host bool, local net.Addr) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	q := r.Question[0]
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: a.ttl}
	apex := len(q.Name) == len(zone) // zone matched as a suffix, so equal length means apex

	v4, v6 := a.a, a.aaaa
	if host {
		v4, v6 = a.hostAddrs(strings.ToLower(q.Name), local)
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeANY:
		m.Answer = appendAddrs(m.Answer, hdr, v4, nil)
		if q.Qtype == dns.TypeANY {
			m.Answer = appendAddrs(m.Answer, hdr, nil, v6)
		}
	case dns.TypeAAAA:
		m.Answer = appendAddrs(m.Answer, hdr, nil, v6)
	case dns.TypeSOA:
		if apex {
			soa := *a.soa[zone]
			soa.Hdr.Name = q.Name
			m.Answer = append(m.Answer, &soa)
		}
	case dns.TypeNS:
		if apex {
			hdr.Rrtype = dns.TypeNS
			for _, s := range a.nsServers(zone) {
				m.Answer = append(m.Answer, &dns.NS{Hdr: hdr, Ns: s.name})
				if _, ok := a.hosts[s.name]; ok { // glue for the names inside the zone
					g4, g6 := a.hostAddrs(s.name, local)
					ghdr := dns.RR_Header{Name: s.name, Class: dns.ClassINET, Ttl: a.ttl}
					m.Extra = appendAddrs(m.Extra, ghdr, g4, g6)
				}
			}
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{a.soa[zone]} // NODATA: the SOA tells resolvers how long to cache it
	}
	return m
}

// appendAddrs appends an A record for each of v4 and an AAAA for each of v6.
func appendAddrs(rrs []dns.RR, hdr dns.RR_Header, v4, v6 []net.IP) []dns.RR {
	hdr.Rrtype = dns.TypeA
	for _, ip := range v4 {
		rrs = append(rrs, &dns.A{Hdr: hdr, A: ip})
	}
	hdr.Rrtype = dns.TypeAAAA
	for _, ip := range v6 {
		rrs = append(rrs, &dns.AAAA{Hdr: hdr, AAAA: ip})
	}
	return rrs
}
