package statusengine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/statusengine/statusengine/api/apitypes"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// Live replication between the name servers of a zone: each pulls, from
// every peer, the records that peer stored after the last one it took,
// through the peer's GET /api/v1/reports (cursor pagination, the token),
// then the records the peer imported since (GET /api/v1/imports, a cursor
// of its own: their keys lie below the first cursor), and stores them
// through the store's import path (validation, de-duplication). The
// cursors of each peer are kept in the database (store.Peer), so a restart
// resumes. A mesh (every server lists every other) makes every server hold
// every report once: each report is stored first by the server it reached,
// and pulled from there by the others.
//
// A peer is trusted with what it says, within bounds: only records of the
// zones served are taken, a record that cannot be taken is skipped and
// counted, a page is capped, no redirect is followed, the token goes over
// https (or to a loopback address) unless the operator says insecure.

// peersConfig is the peers property.
type peersConfig struct {
	urls     []string
	token    string
	interval time.Duration
	roots    *x509.CertPool // from ca; nil: the system's roots
	insecure bool           // the token may cross the network in clear
	file     string         // where the peers property is, for errors
	line     int            // found once its block is read
}

// Bounds of replication.
const (
	defaultPeerInterval = 10 * time.Second
	minPeerInterval     = 100 * time.Millisecond
	maxPeerBackoff      = 5 * time.Minute
	peerPage            = 1000             // records asked per request (the API's most)
	peerRequestTimeout  = 30 * time.Second // one page
	maxPeerBody         = 4 << 20          // a page of 1000 records is under 2 MiB
)

// replication runs one puller per peer for a store.
type replication struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	urls   []string // the peers, whose gauges it holds (liveGauges)
}

func startReplication(pc peersConfig, zones []string, st *store.Store) *replication {
	ctx, cancel := context.WithCancel(context.Background())
	r := &replication{cancel: cancel, urls: pc.urls}
	client := peerClient(pc)
	for _, u := range pc.urls {
		liveGauges.hold("peer " + u)
		p := &puller{url: u, token: pc.token, interval: pc.interval, st: st, client: client, started: time.Now(),
			zones: store.ZoneSet(zones)}
		// Each configured peer's counters exist at 0 from the start, so a
		// rate() over them (the dashboard, an alert) reads 0 on a healthy
		// server, not "no data" (Prometheus's instrumentation guide, for
		// label values known in advance).
		peerErrors.WithLabelValues(u)
		for _, reason := range []string{rejectUndecodable, rejectOrder, rejectZone, rejectInvalid} {
			peerRejected.WithLabelValues(u, reason)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			p.run(ctx)
		}()
	}
	return r
}

// peerClient is the HTTP client of the pullers: it follows no redirect (a
// redirect would carry the token elsewhere; the puller reports it), and
// checks the peers' certificates against the ca property's roots, or the
// system's.
func peerClient(pc peersConfig) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone() // its proxy, dial and handshake timeouts
	tr.TLSClientConfig = &tls.Config{RootCAs: pc.roots, MinVersion: tls.VersionTLS12}
	return &http.Client{
		Timeout:       peerRequestTimeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// stop ends the pullers and waits for them (a request in flight ends with
// its context), and deletes the lag of the peers no other instance pulls.
func (r *replication) stop() {
	if r == nil {
		return
	}
	r.cancel()
	r.wg.Wait()
	for _, u := range r.urls {
		liveGauges.release("peer "+u, func() { peerLag.DeleteLabelValues(u) })
	}
}

// puller pulls one peer's records into a store.
type puller struct {
	url, token string
	interval   time.Duration
	st         *store.Store
	client     *http.Client
	started    time.Time
	zones      map[string]bool // the zones served: records of others are refused
	logged     time.Time       // of the last error line
	// rejectLogged is the time of the last line about a skipped record.
	rejectLogged time.Time
	noImports    bool // the peer has no /api/v1/imports: said once
}

func (p *puller) run(ctx context.Context) {
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		err := p.pull(ctx)
		state, _ := p.st.Peer(p.url)
		since := p.started
		if !state.Synced.IsZero() {
			since = state.Synced
		}
		peerLag.WithLabelValues(p.url).Set(time.Since(since).Seconds())
		switch {
		case err == nil:
			wait = p.interval
		case ctx.Err() != nil:
			return
		default:
			peerErrors.WithLabelValues(p.url).Inc()
			// Back off: a peer that is down costs a request per backoff.
			wait = min(max(wait*2, p.interval), maxPeerBackoff)
			if time.Since(p.logged) > time.Minute {
				log.Warningf("peer %s: %v (retrying in %v)", p.url, err, wait)
				p.logged = time.Now()
			}
		}
	}
}

// A page of the peer's /api/v1/reports is decoded as a stream, one record
// at a time, and read through a cap: a hostile or broken peer can neither
// make a pull hold more than maxPeerBody of its answer, nor stop the
// replication with one record this server cannot take. Such a record is
// skipped, counted (peer_rejected_total) and passed by the cursor.

// Reasons a record from a peer is rejected: the values of the reason label.
const (
	rejectUndecodable = "undecodable" // not a record's JSON, or its fields do not parse
	rejectOrder       = "order"       // a key not after the cursor: the peer's order is broken
	rejectZone        = "zone"        // of a zone this server does not serve
	rejectInvalid     = "invalid"     // refused by the store (record.Record.Validate)
)

// errPeerPageCap ends the decoding of a page past maxPeerBody.
var errPeerPageCap = fmt.Errorf("the page is larger than the %d MiB cap on a peer's page (a page of %d records is under 2 MiB)", maxPeerBody>>20, peerPage)

// cappedReader reads at most left bytes, then fails with errPeerPageCap.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, errPeerPageCap
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= int64(n)
	return n, err
}

// pulledPage is what one page of a peer gave: the records to store, the
// highest key it moves the cursor to (0: none), and the count of records
// listed, taken or not. Its cursors are in the apitypes page decoded with it.
type pulledPage struct {
	recs  []*record.Record
	last  uint64
	count int
}

// pull takes pages of the peer's records after the cursor until it has
// them all, storing each page before it moves the cursor past it; then
// the records imported at the peer since the last pull.
func (p *puller) pull(ctx context.Context) error {
	state, err := p.st.Peer(p.url)
	if err != nil {
		return err
	}
	if err := p.pullReports(ctx, &state); err != nil {
		return err
	}
	return p.pullImports(ctx, &state)
}

// pullReports takes the peer's records after state's key cursor, a page at
// a time, moving the cursor past each page once it is stored.
func (p *puller) pullReports(ctx context.Context, state *store.PeerState) error {
	for ctx.Err() == nil {
		q := url.Values{"from": {"0"}, "limit": {fmt.Sprint(peerPage)}}
		if state.Cursor != 0 {
			q.Set("cursor", record.KeyString(state.Cursor))
		}
		var head apitypes.ReportsPage
		page, err := p.page(ctx, "/api/v1/reports", q, state.Cursor, true, &head)
		if err != nil {
			return err
		}
		if err := p.store(page); err != nil {
			return err
		}
		moved := page.last != 0
		if moved {
			state.Cursor = page.last
		}
		done := head.NextCursor == nil
		if !done && !moved {
			// Every record of the page was skipped without a key to go
			// on from: the peer's own cursor is the way past them.
			k, err := record.ParseKey(*head.NextCursor)
			if err != nil || k <= state.Cursor {
				return fmt.Errorf("GET /api/v1/reports: a page of %d records that moves no cursor (next_cursor %q)", page.count, *head.NextCursor)
			}
			state.Cursor = k
		}
		if done {
			state.Synced = time.Now()
		}
		if err := p.st.SetPeer(p.url, *state); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	return ctx.Err()
}

// pullImports takes the records the peer imported below its newest key
// (its GET /api/v1/imports, after a cursor of its own): the key cursor of
// pullReports has passed them. A peer without the endpoint (an older
// version) answers 404: nothing to take, said once.
func (p *puller) pullImports(ctx context.Context, state *store.PeerState) error {
	for ctx.Err() == nil {
		q := url.Values{"limit": {fmt.Sprint(peerPage)}}
		if state.Imports != 0 {
			q.Set("cursor", strconv.FormatUint(state.Imports, 16))
		}
		var head apitypes.ImportsPage
		page, err := p.page(ctx, "/api/v1/imports", q, 0, false, &head)
		if errors.Is(err, errNoEndpoint) {
			if !p.noImports {
				log.Infof("peer %s: no /api/v1/imports (an older version): its imports are not pulled", p.url)
				p.noImports = true
			}
			return nil
		}
		if err != nil {
			return err
		}
		if err := p.store(page); err != nil {
			return err
		}
		seq, err := strconv.ParseUint(head.Cursor, 16, 64)
		if err != nil || seq < state.Imports || (head.More && seq == state.Imports) {
			return fmt.Errorf("GET /api/v1/imports: cursor %q after %x: not a cursor that moves on", head.Cursor, state.Imports)
		}
		state.Imports = seq
		if err := p.st.SetPeer(p.url, *state); err != nil {
			return err
		}
		if !head.More {
			return nil
		}
	}
	return ctx.Err()
}

// store stores the records a page gave, counting those the store refuses.
func (p *puller) store(page *pulledPage) error {
	if len(page.recs) == 0 {
		return nil
	}
	res, err := p.st.SubmitPulled(page.recs)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Outcome == store.Rejected {
			p.reject(rejectInvalid)
		}
	}
	return nil
}

// reject counts a record of the peer that is not taken.
func (p *puller) reject(reason string) {
	peerRejected.WithLabelValues(p.url, reason).Inc()
}

// errNoEndpoint is a 404 of the peer: an endpoint of a later version.
var errNoEndpoint = errors.New("no such endpoint")

// page asks the peer for a page of records at path and decodes it; cursor,
// ordered and head are decode's.
func (p *puller) page(ctx context.Context, path string, q url.Values, cursor uint64, ordered bool, head any) (*pulledPage, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", p.url+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 {
			return nil, fmt.Errorf("GET %s: %s, a redirect to %q: redirects are not followed (give the peer's own URL)", path, resp.Status, loc)
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("GET %s: %w", path, errNoEndpoint)
		}
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	page, err := p.decode(&cappedReader{r: resp.Body, left: maxPeerBody}, cursor, ordered, head)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return page, nil
}

// decode reads a page (apitypes.ReportsPage or ImportsPage) one record at
// a time, its cursors into head. A record that does not decode, is out of
// order (when ordered: keys after cursor, growing) or is of another zone is
// counted and skipped; only a page that is not JSON, or too large, fails.
func (p *puller) decode(r io.Reader, cursor uint64, ordered bool, head any) (*pulledPage, error) {
	page := &pulledPage{}
	err := apitypes.DecodePage(r, head, func(raw json.RawMessage) error {
		if page.count++; page.count > peerPage {
			return fmt.Errorf("more than the %d records asked", peerPage)
		}
		p.take(page, raw, cursor, ordered)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// take adds one record of a page to it, or counts why not.
func (p *puller) take(page *pulledPage, raw json.RawMessage, cursor uint64, ordered bool) {
	var w record.Wire
	werr := json.Unmarshal(raw, &w)
	if werr != nil {
		// Its key may still read, to go on from.
		var keyOnly struct {
			Key string `json:"key"`
		}
		json.Unmarshal(raw, &keyOnly)
		w.Key = keyOnly.Key
	}
	if ordered {
		k, err := record.ParseKey(w.Key)
		if err != nil || k <= cursor || k <= page.last {
			p.reject(rejectOrder)
			if err != nil {
				p.noteReject("a record without a key in order")
			}
			return
		}
		page.last = k
	}
	if werr != nil {
		p.reject(rejectUndecodable)
		p.noteReject(fmt.Sprintf("record %s: %v", w.Key, werr))
		return
	}
	if p.zones != nil && !p.zones[w.Zone] {
		p.reject(rejectZone)
		p.noteReject(fmt.Sprintf("record %s: zone %q is not one this server serves", w.Key, w.Zone))
		return
	}
	rec, err := w.Record(p.st.Schemas())
	if err != nil {
		p.reject(rejectUndecodable)
		p.noteReject(fmt.Sprintf("record %s: %v", w.Key, err))
		return
	}
	page.recs = append(page.recs, rec)
}

// noteReject logs a skipped record, at most one line a minute per peer.
func (p *puller) noteReject(why string) {
	if time.Since(p.rejectLogged) > time.Minute {
		log.Warningf("peer %s: skipped %s (coredns_statusengine_peer_rejected_total counts them)", p.url, why)
		p.rejectLogged = time.Now()
	}
}
