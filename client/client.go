// Package client reports a piece of software to a status collector the way
// ModSecurity's SecStatusEngine does: it encodes a beacon into a DNS name
// under the status zone and resolves that name with one UDP query of type A,
// recursion desired and no EDNS, as gethostbyname does. Any A record in the
// answer means the report arrived.
//
// Other software reports itself with it to a zone whose Corefile gives the
// schema of its beacon (docs/schemas.md): Beacon joins the field values and
// checks the bounds every schema holds, Send reports it.
//
//	beacon, err := client.Beacon("myapp", "1.2.3", "linux", "amd64", id)
//	res, err := client.Send(ctx, beacon, client.Options{Zone: "status.example.org"})
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// DefaultZone is ModSecurity's status zone.
const DefaultZone = "status.modsecurity.org."

// Options tell Send where and how to report. The zero value reports to
// DefaultZone through the system resolver with the current time.
type Options struct {
	// Server is the DNS server to ask, "host:port" or "host" (port 53).
	// Empty means the nameservers of ResolvConf, in order, as the C
	// library does.
	Server string
	// Zone is the status zone; empty means DefaultZone.
	Zone string
	// Epoch is the client epoch label. Zero means the current time; a
	// negative value leaves the label out (the 2014 beta format).
	Epoch int64
	// LabelLen is the data label length: 32 (0 means 32), or 30 as
	// ModSecurity's Windows builds use.
	LabelLen int
	// Timeout bounds each attempt; zero takes resolv.conf's (5 s by default).
	Timeout time.Duration
	// ResolvConf is the resolver configuration for an empty Server; empty
	// means /etc/resolv.conf.
	ResolvConf string
}

// Result is what the server answered.
type Result struct {
	Name    string       // the name resolved
	Server  string       // the server that answered
	Addrs   []netip.Addr // the A records in the answer
	Rcode   int
	RTT     time.Duration
	Retries int // attempts after the first
}

// ErrNoAddress means the answer held no A record: the report was not taken.
var ErrNoAddress = errors.New("no A record in the answer")

// Beacon joins the values of a custom schema's fields, in the schema's
// order, into a beacon, and checks the bounds every custom schema holds
// (codec.ParseSchema): at most codec.MaxFields values, each printable
// ASCII without a comma and at most codec.MaxFieldLen bytes, the first at
// most codec.MaxFirstFieldLen. Empty values and "(null)" are allowed. The
// count of fields must also match the zone's schema, which only the
// collector knows; with min_fields the schema also bounds the head of a
// beacon that carries optional fields (docs/schemas.md).
func Beacon(values ...string) (string, error) {
	if len(values) == 0 || len(values) > codec.MaxFields {
		return "", fmt.Errorf("%d values: a beacon has 1 to %d fields", len(values), codec.MaxFields)
	}
	for i, v := range values {
		limit := codec.MaxFieldLen
		if i == 0 {
			limit = codec.MaxFirstFieldLen
		}
		if len(v) > limit {
			return "", fmt.Errorf("value %d (%.20q...) is longer than %d bytes", i+1, v, limit)
		}
		for j := 0; j < len(v); j++ {
			if c := v[j]; c < 0x20 || c > 0x7e || c == codec.Separator {
				return "", fmt.Errorf("value %d (%q) holds %q: printable ASCII without a comma only", i+1, v, c)
			}
		}
	}
	return strings.Join(values, ","), nil
}

// Name returns the name Send resolves for beacon with opts.
func Name(beacon string, opts Options) string {
	zone := opts.Zone
	if zone == "" {
		zone = DefaultZone
	}
	epoch := opts.Epoch
	if epoch == 0 {
		epoch = time.Now().Unix()
	}
	return codec.EncodeLabels(beacon, epoch, zone, opts.LabelLen)
}

// Send reports beacon. It returns ErrNoAddress (wrapped, with the rcode) when
// an answer came back without an A record, and the network error when none
// came back at all.
func Send(ctx context.Context, beacon string, opts Options) (*Result, error) {
	name := Name(beacon, opts)
	// Longer names are refused by the client's resolver library: they never
	// leave the host.
	if len(name) > 254 {
		return &Result{Name: name}, fmt.Errorf("name of %d octets is longer than DNS allows: shorten the beacon", len(name)-1)
	}
	servers, attempts, timeout, err := resolvers(opts)
	if err != nil {
		return &Result{Name: name}, err
	}

	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA) // RD set by SetQuestion; no OPT record
	res := &Result{Name: name}
	var lastErr error
	// As the C resolver: each server in turn, the whole list attempts times;
	// SERVFAIL moves on to the next try.
	for try := 0; try < attempts; try++ {
		for _, srv := range servers {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if try > 0 || srv != servers[0] {
				res.Retries++
			}
			r, rtt, err := exchange(ctx, m, srv, timeout)
			if err != nil {
				lastErr = fmt.Errorf("%s: %w", srv, err)
				continue
			}
			res.Server, res.Rcode, res.RTT = srv, r.Rcode, rtt
			if r.Rcode == dns.RcodeServerFailure {
				lastErr = fmt.Errorf("%s answered SERVFAIL: %w", srv, ErrNoAddress)
				continue
			}
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok {
					if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
						res.Addrs = append(res.Addrs, ip)
					}
				}
			}
			if len(res.Addrs) == 0 {
				return res, fmt.Errorf("%s answered %s: %w", srv, dns.RcodeToString[r.Rcode], ErrNoAddress)
			}
			return res, nil
		}
	}
	return res, lastErr
}

// exchange asks over UDP and, like the C library, again over TCP when the
// answer comes back truncated.
func exchange(ctx context.Context, m *dns.Msg, server string, timeout time.Duration) (*dns.Msg, time.Duration, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout}
	r, rtt, err := c.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, rtt, err = c.ExchangeContext(ctx, m, server)
	}
	return r, rtt, err
}

func resolvers(opts Options) (servers []string, attempts int, timeout time.Duration, err error) {
	if opts.Server != "" {
		srv := opts.Server
		if _, _, err := net.SplitHostPort(srv); err != nil {
			srv = net.JoinHostPort(srv, "53")
		}
		timeout = opts.Timeout
		if timeout == 0 {
			timeout = 5 * time.Second
		}
		return []string{srv}, 2, timeout, nil
	}
	path := opts.ResolvConf
	if path == "" {
		path = "/etc/resolv.conf"
	}
	conf, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("system resolver: %w", err)
	}
	if len(conf.Servers) == 0 {
		return nil, 0, 0, fmt.Errorf("system resolver: no nameserver in %s", path)
	}
	for _, s := range conf.Servers {
		servers = append(servers, net.JoinHostPort(s, conf.Port))
	}
	timeout = opts.Timeout
	if timeout == 0 {
		timeout = time.Duration(conf.Timeout) * time.Second
	}
	return servers, max(conf.Attempts, 1), timeout, nil
}
