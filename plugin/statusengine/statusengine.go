// Package statusengine is a CoreDNS plugin that collects DNS-borne status
// reports (ModSecurity's SecStatusEngine): it answers every name of its zones
// with fixed addresses, decodes the report carried in the name and stores it.
package statusengine

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

const pluginName = "statusengine"

var log = clog.NewWithPlugin(pluginName)

// StatusEngine is the plugin handler.
type StatusEngine struct {
	Next  plugin.Handler
	Zones []string

	answers answers
	dbPath  string
	api     apiConfig
	geo     Locator

	policy    store.Policy
	addresses addressMode

	store *store.Store // set on startup, released on shutdown
}

// Name implements plugin.Handler.
func (se *StatusEngine) Name() string { return pluginName }

// CacheBypassZones keeps the cache plugin from swallowing repeated reports.
func (se *StatusEngine) CacheBypassZones() []string { return se.Zones }

// ServeDNS implements plugin.Handler. This is where a question becomes a
// stored record: decode the name, store it (waiting for the commit), answer.
func (se *StatusEngine) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	qname := state.Name()
	zone := plugin.Zones(se.Zones).Matches(qname)
	if zone == "" {
		return plugin.NextOrFailure(se.Name(), se.Next, ctx, w, r)
	}
	server := metricsServer(ctx)

	if badOPT(r) {
		// RFC 6891 6.1.1. The server writes the FORMERR for this rcode.
		reportsTotal.WithLabelValues(server, zone, outcomeMalformed).Inc()
		return dns.RcodeFormatError, nil
	}
	if c := state.QClass(); c != dns.ClassINET && c != dns.ClassANY {
		reportsTotal.WithLabelValues(server, zone, outcomeMalformed).Inc()
		return refuse(w, r)
	}

	if _, host := se.answers.hosts[qname]; host {
		// A name server name inside the zone: resolvers look it up to reach
		// this server, so it resolves to this server, and it is no report.
		reportsTotal.WithLabelValues(server, zone, outcomeNS).Inc()
		w.WriteMsg(se.answers.reply(r, zone, true, w.LocalAddr()))
		return dns.RcodeSuccess, nil
	}

	rep, err := codec.Decode(qname, zone)
	if err != nil {
		if qname != zone { // the apex is an ordinary name to ask, not a bad report
			reportsTotal.WithLabelValues(server, zone, codec.Outcome(err)).Inc()
		}
	} else {
		setMetadata(ctx, &rep)
		reportsTotal.WithLabelValues(server, zone, se.ingest(state, zone, rep)).Inc()
	}

	m := se.answers.reply(r, zone, false, w.LocalAddr())
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// ingest stores one decoded report and says how it went, as a metric outcome.
func (se *StatusEngine) ingest(state request.Request, zone string, rep codec.Report) string {
	st := se.store
	if st == nil {
		return outcomeStoreFailed
	}
	rec := &store.Record{
		Received: time.Now(),
		Zone:     zone,
		Resolver: remoteAddr(state),
		ECS:      clientSubnet(state.Req),
		Report:   rep,
	}
	rec.Source = sourceNetwork(rec.Resolver)
	if se.geo != nil {
		rec.Geo = se.geo.Locate(rec.Resolver, rec.ECS)
	}
	se.keepAddresses(rec)
	outcome, err := st.Submit(rec)
	switch outcome {
	case store.Stored:
		return outcomeStored
	case store.Duplicate:
		return outcomeDuplicate
	case store.Limited:
		return outcomeLimited
	}
	storeErrorLog(err)
	return outcomeStoreFailed
}

func refuse(w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeRefused)
	w.WriteMsg(m)
	return dns.RcodeRefused, nil
}

// badOPT tells whether r has more than one OPT record, or one outside the
// additional section. CoreDNS itself answers BADVERS to an EDNS version
// above 0 before any plugin runs, but reads only the first OPT record.
func badOPT(r *dns.Msg) bool {
	n := 0
	for _, rr := range r.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	if n > 1 {
		return true
	}
	for _, sec := range [][]dns.RR{r.Answer, r.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				return true
			}
		}
	}
	return false
}

func remoteAddr(state request.Request) netip.Addr {
	a, err := netip.ParseAddr(state.IP())
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// clientSubnet is the EDNS Client Subnet of the query, masked to its source
// prefix (RFC 7871 says bits past it must be zero, resolvers don't always).
func clientSubnet(r *dns.Msg) netip.Prefix {
	opt := r.IsEdns0()
	if opt == nil {
		return netip.Prefix{}
	}
	for _, o := range opt.Option {
		e, ok := o.(*dns.EDNS0_SUBNET)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(e.Address)
		if !ok {
			return netip.Prefix{}
		}
		a = a.Unmap()
		p, err := a.Prefix(int(e.SourceNetmask))
		if err != nil {
			return netip.Prefix{}
		}
		return p
	}
	return netip.Prefix{}
}

// storeErrorLog keeps a failing disk from flooding the log: one line a second.
var lastStoreError atomic.Int64

func storeErrorLog(err error) {
	if err == nil {
		return
	}
	now := time.Now().UnixNano()
	if last := lastStoreError.Load(); now-last > int64(time.Second) && lastStoreError.CompareAndSwap(last, now) {
		log.Errorf("report not stored: %v", err)
	}
}
