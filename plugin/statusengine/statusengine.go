// Package statusengine is a CoreDNS plugin that collects DNS-borne status
// reports (ModSecurity's SecStatusEngine): it answers every name of its zones
// with fixed addresses, decodes the report carried in the name and stores it.
package statusengine

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/fleet"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
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
	// answerWait bounds how long an answer waits for its report to be
	// durable (answer_deadline); store.NoAnswerDeadline: no bound.
	answerWait time.Duration

	// schema is the beacon of the zones: codec.ModSecurity (the default),
	// or a custom schema, whose reports are stored as codec.FormatSchema
	// records (the store reads their fields with the schema it keeps for
	// the zone, Store.SetSchema).
	schema *codec.Schema
	// title is the title of the zones' status page; "" names the zone.
	title string

	peers peersConfig
	repl  *replication // pulling from the peers, while started

	jetstream *jetstreamConfig // nil: no jetstream property
	feed      *fleet.Feed      // publishing to and consuming the stream, while started

	store *store.Store // set on startup, released on shutdown
}

// Name implements plugin.Handler.
func (se *StatusEngine) Name() string { return pluginName }

// CacheBypassZones keeps the cache plugin from swallowing repeated reports.
func (se *StatusEngine) CacheBypassZones() []string { return se.Zones }

// ServeDNS implements plugin.Handler. This is where a question becomes a
// stored record: decode the name, store it (waiting for the commit), answer.
func (se *StatusEngine) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) == 0 {
		return plugin.NextOrFailure(se.Name(), se.Next, ctx, w, r)
	}
	// The name as sent, letters in any case: zone matching and the codec
	// ignore case, so no lower-cased copy is made.
	q := r.Question[0]
	zone := plugin.Zones(se.Zones).Matches(q.Name)
	if zone == "" {
		return plugin.NextOrFailure(se.Name(), se.Next, ctx, w, r)
	}
	server := metricsServer(ctx)

	if r.Opcode != dns.OpcodeQuery {
		// Only a QUERY is a report. miekg/dns lets NOTIFY through to the
		// plugins (it refuses the other opcodes itself); RFC 8906 3.1.4
		// asks for NOTIMP, which the server writes for this rcode.
		countReport(server, zone, outcomeMalformed)
		return dns.RcodeNotImplemented, nil
	}
	ecs, ecsOK := clientSubnet(r)
	if !ecsOK || badOPT(r) {
		// RFC 6891 6.1.1 and RFC 7871 6. The server writes the FORMERR for
		// this rcode.
		countReport(server, zone, outcomeMalformed)
		return dns.RcodeFormatError, nil
	}
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		countReport(server, zone, outcomeMalformed)
		return dns.RcodeRefused, nil // the server writes the REFUSED for this rcode
	}

	if se.answers.isHost(q.Name) {
		// A name server name inside the zone: resolvers look it up to reach
		// this server, so it resolves to this server, and it is no report.
		countReport(server, zone, outcomeNS)
		w.WriteMsg(se.answers.reply(r, zone, true, w.LocalAddr()))
		return dns.RcodeSuccess, nil
	}

	if s := se.schema; s != nil && s != codec.ModSecurity {
		se.serveCustom(w, server, zone, q.Name, ecs)
		w.WriteMsg(se.answers.reply(r, zone, false, w.LocalAddr()))
		return dns.RcodeSuccess, nil
	}

	// Decoded straight into the record it is stored as (see codec.DecodeTo).
	rec := new(record.Record)
	if err := codec.DecodeTo(&rec.Report, q.Name, zone); err != nil {
		if len(q.Name) != len(zone) { // the apex is an ordinary name to ask, not a bad report
			countReport(server, zone, codec.Outcome(err))
		}
	} else {
		setMetadata(ctx, &rec.Report)
		countReport(server, zone, se.ingest(w, zone, ecs, rec))
	}

	m := se.answers.reply(r, zone, false, w.LocalAddr())
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// serveCustom decodes a name of a zone whose schema is a custom one and
// stores its report through the path of ModSecurity's (ingest): partial
// and malformed names are counted as for ModSecurity's schema, a report by
// what the store did with it.
func (se *StatusEngine) serveCustom(w dns.ResponseWriter, server, zone, qname string, ecs netip.Prefix) {
	sr, err := codec.DecodeSchema(se.schema, qname, zone)
	if err != nil {
		if len(qname) != len(zone) { // the apex is an ordinary name to ask, not a bad report
			countReport(server, zone, codec.Outcome(err))
		}
		return
	}
	rec := &record.Record{Report: sr.AsReport()}
	countReport(server, zone, se.ingest(w, zone, ecs, rec))
}

// ingest stores one decoded report (rec holds its Report) and says how it
// went, as a metric outcome.
func (se *StatusEngine) ingest(w dns.ResponseWriter, zone string, ecs netip.Prefix, rec *record.Record) string {
	st := se.store
	if st == nil {
		return outcomeStoreFailed
	}
	rec.Received, rec.Zone, rec.Resolver, rec.ECS = time.Now(), zone, remoteAddr(w), ecs
	rec.LimitNet = limitNetwork(rec.Resolver)
	if se.geo != nil {
		rec.Geo = se.geo.Locate(rec.Resolver, rec.ECS)
	}
	se.keepAddresses(rec)
	outcome, err := st.SubmitWithin(rec, se.answerWait)
	switch outcome {
	case store.Stored:
		return outcomeStored
	case store.Duplicate:
		return outcomeDuplicate
	case store.Limited:
		return outcomeLimited
	case store.Queued:
		return outcomeQueued
	case store.Rejected:
		return outcomeRejected
	}
	storeErrorLog(err)
	return outcomeStoreFailed
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

// remoteAddr is the address the query came from (the resolver).
func remoteAddr(w dns.ResponseWriter) netip.Addr {
	var a netip.Addr
	switch ra := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		a, _ = netip.AddrFromSlice(ra.IP)
	case *net.TCPAddr:
		a, _ = netip.AddrFromSlice(ra.IP)
	default:
		if ra != nil { // other transports: parse what they print
			state := request.Request{W: w}
			a, _ = netip.ParseAddr(state.IP())
		}
	}
	return a.Unmap()
}

// clientSubnet is the EDNS Client Subnet of the query (RFC 7871), and
// false when the option breaks the RFC's rules, which section 6 answers with
// FORMERR: address bits set past the source prefix, or an address field
// longer or shorter than the prefix needs. No option, family 0 (what dig
// sends for +subnet=0) and a source prefix of 0 (the client asks that its
// address not be used, section 7.1.2) are no subnet. miekg/dns itself
// refuses an unknown family and a prefix longer than the address.
func clientSubnet(r *dns.Msg) (netip.Prefix, bool) {
	opt := r.IsEdns0()
	if opt == nil {
		return netip.Prefix{}, true
	}
	var ecs *dns.EDNS0_SUBNET
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_SUBNET); ok {
			ecs = e
			break
		}
	}
	if ecs == nil || ecs.Family == 0 {
		return netip.Prefix{}, true
	}
	a, ok := netip.AddrFromSlice(ecs.Address)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	p, err := a.Prefix(int(ecs.SourceNetmask))
	if err != nil || p.Addr() != a {
		return netip.Prefix{}, false // host bits set
	}
	// miekg/dns pads or cuts the address field to the family's length and
	// packs it as long as the prefix needs, so the OPT record's RDLENGTH as
	// received differs from its packed length exactly when the field was
	// longer or shorter than that. Only queries with ECS pay for this. An
	// OPT record a plugin before this one made has no RDLENGTH: no check.
	if opt.Hdr.Rdlength != 0 && int(opt.Hdr.Rdlength) != dns.Len(opt)-dns.Len(&dns.OPT{Hdr: opt.Hdr}) {
		return netip.Prefix{}, false
	}
	if ecs.SourceNetmask == 0 {
		return netip.Prefix{}, true
	}
	return p, true
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
