package tinydns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// Stats counts what Import did with the lines of a log.
type Stats struct {
	store.ImportStats
	// Ignored counts lines that are valid but carry no report: tinydns's
	// own messages, queries it did not answer (result other than +), and
	// the partial names of QNAME minimisation.
	Ignored int
}

// Options tell Import how to read a log.
type Options struct {
	// Zones are the status zones; a name is decoded under the longest one
	// it falls in. Empty means status.modsecurity.org.
	Zones []string
	// Fallback is the receive time of a report whose line has no
	// timestamp and whose name has no client epoch label.
	Fallback time.Time
	// Location is the time zone of tai64nlocal timestamps; nil is local time.
	Location *time.Location
	// Reject, when set, is told about each rejected line.
	Reject func(line int, text string, err error)
	// Progress, when set, is called with the bytes read so far, at most
	// every 64 KiB.
	Progress func(read int64)
	// Locate, when set, geolocates each report from its resolver address,
	// as the server does at ingest (the original collector never did).
	Locate func(resolver netip.Addr, ecs netip.Prefix) geo.Location
}

// DefaultZone is the zone of ModSecurity's status reports.
const DefaultZone = "status.modsecurity.org."

// maxLine bounds a log line; tinydns writes at most about 1100 bytes.
const maxLine = 64 * 1024

// Import stores every report found in a tinydns log into st. Each answered
// query (+) whose name decodes as a report becomes a record: its receive
// time is the line's timestamp, else the client epoch label of the name,
// else opts.Fallback; its resolver is the logged client address. The store
// de-duplicates as it does live reports, so importing a log twice stores
// nothing new (for names without an epoch label, only when the line has a
// timestamp or Fallback is the same).
func Import(st *store.Store, r io.Reader, opts Options) (Stats, error) {
	zones := plugin.Zones{DefaultZone}
	if len(opts.Zones) > 0 {
		zones = make(plugin.Zones, len(opts.Zones))
		for i, z := range opts.Zones {
			zones[i] = dns.Fqdn(strings.ToLower(z))
		}
	}
	var (
		stats Stats
		// The store rejects what Record.Validate refuses, later, by line.
		im = store.NewImporter(st, func(at int, err error) {
			if opts.Reject != nil {
				opts.Reject(at, "", err)
			}
		})
		cr   = &countingReader{r: r, progress: opts.Progress}
		sc   = bufio.NewScanner(cr)
		line = 0
	)
	sc.Buffer(make([]byte, 4096), maxLine)
	reject := func(text string, err error) {
		im.Stats.Rejected++
		if opts.Reject != nil {
			opts.Reject(line, text, err)
		}
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" {
			continue
		}
		e, err := ParseLine(text, opts.Location)
		switch {
		case errors.Is(err, ErrNotQuery):
			stats.Ignored++
			continue
		case err != nil:
			reject(text, err)
			continue
		case e.Result != '+':
			stats.Ignored++
			continue
		}
		zone := zones.Matches(dns.Fqdn(strings.ToLower(e.Name)))
		if zone == "" {
			reject(text, codec.ErrNotInZone)
			continue
		}
		rep, err := codec.Decode(e.Name, zone)
		if errors.Is(err, codec.ErrPartial) {
			stats.Ignored++
			continue
		}
		if err != nil {
			reject(text, err)
			continue
		}
		rec := &record.Record{Zone: zone, Resolver: e.Client, Report: rep}
		if opts.Locate != nil {
			rec.Geo = opts.Locate(rec.Resolver, netip.Prefix{})
		}
		switch {
		case e.HasTime:
			rec.Received = e.Time
		case rep.HasEpoch && rep.Epoch > 0:
			rec.Received = time.Unix(rep.Epoch, 0).UTC()
		default:
			rec.Received = opts.Fallback
		}
		if err := im.Add(rec, line); err != nil {
			stats.ImportStats = im.Stats
			return stats, err
		}
	}
	err := im.Flush()
	stats.ImportStats = im.Stats
	if err == nil && sc.Err() != nil {
		err = fmt.Errorf("line %d: %w", line+1, sc.Err())
	}
	if opts.Progress != nil {
		opts.Progress(cr.n)
	}
	return stats, err
}

type countingReader struct {
	r        io.Reader
	n, last  int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && c.n-c.last >= 64*1024 {
		c.last = c.n
		c.progress(c.n)
	}
	return n, err
}
