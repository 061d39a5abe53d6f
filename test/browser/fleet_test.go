package browser

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// fleet is a made-up population of ModSecurity installations spread over
// the countries the embedded geo database knows.
type fleet struct {
	rng       *rand.Rand
	countries []string                // ordered by weight, most first
	addrs     map[string][]netip.Addr // public addresses per country
	installs  []install
}

type install struct {
	beacon  string // without the client epoch
	addr    netip.Addr
	country string
}

var (
	modsecs = []weighted{{"2.9.7", 40}, {"2.9.8", 25}, {"2.9.6", 12}, {"2.9.5", 8}, {"2.9.3", 6}, {"2.8.0", 4}, {"2.9.4", 3}, {"2.9.2", 2}}
	servers = []weighted{{"Apache/2.4.62 (Debian)", 30}, {"Apache/2.4.58 (Ubuntu)", 20}, {"Apache", 12}, {"nginx", 15},
		{"Apache/2.4.37 (Red Hat Ent", 8}, {"IIS", 5}, {"Apache/2.4.62 (Unix) Open", 5}}
	aprs    = []weighted{{"1.7.2/1.7.2", 50}, {"1.7.0/1.7.0", 25}, {"1.6.5/1.6.5", 15}, {"1.7.5/1.7.5", 10}}
	pcres   = []weighted{{"10.42/", 45}, {"8.45/8.45 2021-06-15", 25}, {"10.40/", 15}, {"8.39/8.39 2016-06-14", 10}}
	luas    = []weighted{{"(null)", 60}, {"Lua 5.1", 25}, {"Lua 5.4", 15}}
	libxmls = []weighted{{"2.9.14", 45}, {"2.9.10", 25}, {"2.11.5", 15}, {"2.9.13", 15}}
)

type weighted struct {
	v string
	w int
}

func pick(rng *rand.Rand, ws []weighted) string {
	total := 0
	for _, w := range ws {
		total += w.w
	}
	n := rng.IntN(total)
	for _, w := range ws {
		if n -= w.w; n < 0 {
			return w.v
		}
	}
	return ws[0].v
}

// newFleet finds public IPv4 addresses in at least minCountries countries by
// asking the embedded database itself, so the test follows whatever data it
// ships, then makes n installations with Zipf-like country weights.
func newFleet(t *testing.T, loc *geo.Locator, n, minCountries int) *fleet {
	f := &fleet{rng: rand.New(rand.NewPCG(1, 2)), addrs: map[string][]netip.Addr{}}
	var order []string
	for i := 0; i < 200000 && len(order) < 40; i++ {
		b := f.rng.Uint32()
		a := netip.AddrFrom4([4]byte{byte(b >> 24), byte(b >> 16), byte(b >> 8), 1})
		if !geo.Public(a) || b>>24 >= 224 {
			continue
		}
		g := loc.Locate(a, netip.Prefix{})
		if g.Country == "" {
			continue
		}
		if len(f.addrs[g.Country]) == 0 {
			order = append(order, g.Country)
		}
		if len(f.addrs[g.Country]) < 4 {
			f.addrs[g.Country] = append(f.addrs[g.Country], a)
		}
	}
	if len(order) < minCountries {
		t.Fatalf("embedded geo database placed random addresses in %d countries, want %d", len(order), minCountries)
	}
	// Big countries (most address space) first: they get the biggest weight.
	sort.SliceStable(order, func(i, j int) bool { return len(f.addrs[order[i]]) > len(f.addrs[order[j]]) })
	f.countries = order
	ws := make([]weighted, len(order))
	for i, c := range order {
		ws[i] = weighted{c, 1 + 1000/(i+2)}
	}
	for range n {
		c := pick(f.rng, ws)
		f.installs = append(f.installs, f.newInstall(c, pick(f.rng, servers)))
	}
	return f
}

func (f *fleet) newInstall(country, server string) install {
	as := f.addrs[country]
	return install{beacon: randomBeacon(f.rng, server), addr: as[f.rng.IntN(len(as))], country: country}
}

// randomBeacon is the beacon of a ModSecurity 2 build picked by weight,
// without the client epoch.
func randomBeacon(rng *rand.Rand, server string) string {
	return strings.Join([]string{pick(rng, modsecs), server, pick(rng, aprs), pick(rng, pcres),
		pick(rng, luas), pick(rng, libxmls), fmt.Sprintf("%02x", rng.IntN(256))}, ",")
}

// record is one report of in as the plugin would store it had it arrived at
// t through a resolver that sent the installation's subnet as ECS; geo comes
// from the same locator the plugin uses.
func (f *fleet) record(t *testing.T, loc *geo.Locator, in install, at time.Time) *record.Record {
	r, err := codec.ParseBeacon(in.beacon)
	if err != nil {
		t.Fatalf("beacon %q: %v", in.beacon, err)
	}
	r.Epoch, r.HasEpoch = at.Unix(), true
	rec := &record.Record{Received: at, Zone: zone, Report: r,
		Resolver: netip.AddrFrom4([4]byte{8, 8, byte(f.rng.IntN(256)), 8})}
	if f.rng.IntN(3) > 0 {
		rec.ECS = netip.PrefixFrom(in.addr, 24).Masked()
	} else {
		rec.Resolver = in.addr
	}
	rec.Geo = loc.Locate(rec.Resolver, rec.ECS)
	return rec
}

// fillHistory stores reports of the fleet spread over the last historyDays,
// written with the store's own batch path before the server starts: reports
// arriving over DNS would all carry today's time.
func fillHistory(t *testing.T, path string, loc *geo.Locator, f *fleet, now time.Time) int {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var recs []*record.Record
	// From an hour inside the 30-day view to an hour ago, so that a 30d
	// page loaded a little later still counts every one.
	span := int64(historyDays*24*time.Hour - 2*time.Hour)
	for _, in := range f.installs {
		for range 1 + f.rng.IntN(6) {
			at := now.Add(-time.Duration(f.rng.Int64N(span))).Add(-time.Hour)
			recs = append(recs, f.record(t, loc, in, at))
		}
	}
	out, err := st.SubmitBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range out {
		if o.Outcome == store.Stored {
			n++
		}
	}
	return n
}

// sendReports resolves each installation's beacon through the real server
// over loopback UDP with an EDNS Client Subnet option carrying the
// installation's address, as a public resolver would.
func sendReports(t *testing.T, server string, ins []install, epoch int64) {
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, len(ins))
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker is a resolver of its own network (127.0.w.1 is
			// loopback, its own /24): the public floor counts resolver
			// networks, and a fleet behind one resolver would show nothing.
			c := &dns.Client{Net: "udp", Timeout: 3 * time.Second,
				Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, byte(w+1), 1)}}}
			for i := range work {
				in := ins[i]
				m := new(dns.Msg)
				m.SetQuestion(codec.Encode(in.beacon, epoch-int64(i), zone), dns.TypeA)
				m.SetEdns0(1232, false)
				opt := m.IsEdns0()
				opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1,
					SourceNetmask: 24, Address: in.addr.AsSlice()})
				var err error
				for try := 0; try < 3; try++ {
					var r *dns.Msg
					if r, _, err = c.Exchange(m, server); err == nil && r.Rcode != dns.RcodeSuccess {
						err = fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
					}
					if err == nil {
						break
					}
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", in.beacon, err)
				}
			}
		}()
	}
	for i := range ins {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// An answered report is durable at once (the write-ahead log); readers
	// see it once its transaction commits, at most 100 ms later.
	time.Sleep(300 * time.Millisecond)
}
