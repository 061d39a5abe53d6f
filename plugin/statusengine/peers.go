package statusengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coredns/caddy"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// Live replication between the name servers of a zone: each pulls, from
// every peer, the records that peer stored after the last one it took,
// through the peer's GET /api/v1/reports (cursor pagination, the token),
// and stores them through the store's import path (validation,
// de-duplication). The cursor of each peer is kept in the database
// (store.Peer), so a restart resumes. A mesh (every server lists every
// other) makes every server hold every report once: each report is stored
// first by the server it reached, and pulled from there by the others.

// peersConfig is the peers property.
type peersConfig struct {
	urls     []string
	token    string
	interval time.Duration
}

// Bounds of replication.
const (
	defaultPeerInterval = 10 * time.Second
	minPeerInterval     = 100 * time.Millisecond
	maxPeerBackoff      = 5 * time.Minute
	peerPage            = 1000             // records asked per request (the API's most)
	peerRequestTimeout  = 30 * time.Second // one page
	maxPeerBody         = 16 << 20         // a page of 1000 records is under 1 MB
)

// parsePeers reads `peers URL... [{ token T | token_file F; interval D }]`;
// args are the URLs (RemainingArgs stops before a block's brace).
func parsePeers(c *caddy.Controller, args []string) (peersConfig, error) {
	pc := peersConfig{interval: defaultPeerInterval}
	// The dispenser's NextBlock cannot tell a nested block from the next
	// property of the enclosing one, so walk the braces by hand.
	block := c.NextArg()
	if block && c.Val() != "{" {
		return pc, c.Errf("peers: unexpected %q", c.Val())
	}
	if len(args) == 0 {
		return pc, c.Errf("peers needs at least one URL (the peer's API, e.g. http://ns2.example.net:8053)")
	}
	for _, a := range args {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return pc, c.Errf("peers: %q is not an http(s) URL of an API", a)
		}
		pc.urls = append(pc.urls, strings.TrimSuffix(u.String(), "/"))
	}
	if !block {
		return pc, nil
	}
	seen := map[string]bool{}
	for c.Next() {
		property := c.Val()
		if property == "}" {
			return pc, nil
		}
		if seen[property] {
			return pc, c.Errf("peers: %s specified more than once", property)
		}
		seen[property] = true
		vals := c.RemainingArgs()
		switch property {
		case "token":
			if len(vals) != 1 || vals[0] == "" || seen["token_file"] {
				return pc, c.Errf("peers: token needs one value, and excludes token_file")
			}
			pc.token = vals[0]
		case "token_file":
			if len(vals) != 1 || vals[0] == "" || seen["token"] {
				return pc, c.Errf("peers: token_file needs one file name, and excludes token")
			}
			b, err := os.ReadFile(vals[0])
			if err != nil {
				return pc, c.Errf("peers: token_file: %v", err)
			}
			if pc.token = strings.TrimSpace(string(b)); pc.token == "" {
				return pc, c.Errf("peers: token_file %q is empty", vals[0])
			}
		case "interval":
			if len(vals) != 1 {
				return pc, c.Errf("peers: interval needs one duration")
			}
			d, err := time.ParseDuration(vals[0])
			if err != nil || d < minPeerInterval || d > time.Hour {
				return pc, c.Errf("peers: interval %q is not a duration from %v to 1h", vals[0], minPeerInterval)
			}
			pc.interval = d
		default:
			return pc, c.Errf("peers: unknown property %q", property)
		}
	}
	return pc, c.Errf("peers: block is not closed")
}

// replication runs one puller per peer for a store.
type replication struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startReplication(pc peersConfig, st *store.Store) *replication {
	ctx, cancel := context.WithCancel(context.Background())
	r := &replication{cancel: cancel}
	client := &http.Client{Timeout: peerRequestTimeout}
	for _, u := range pc.urls {
		p := &puller{url: u, token: pc.token, interval: pc.interval, st: st, client: client, started: time.Now()}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			p.run(ctx)
		}()
	}
	return r
}

// stop ends the pullers and waits for them (a request in flight ends with
// its context).
func (r *replication) stop() {
	if r == nil {
		return
	}
	r.cancel()
	r.wg.Wait()
}

// puller pulls one peer's records into a store.
type puller struct {
	url, token string
	interval   time.Duration
	st         *store.Store
	client     *http.Client
	started    time.Time
	logged     time.Time // of the last error line
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

// peerPageBody is what the peer's /api/v1/reports answers.
type peerPageBody struct {
	Reports    []store.Wire `json:"reports"`
	NextCursor *string      `json:"next_cursor"`
}

// pull takes pages of the peer's records after the cursor until it has
// them all, storing each page before it moves the cursor past it.
func (p *puller) pull(ctx context.Context) error {
	state, err := p.st.Peer(p.url)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		page, err := p.page(ctx, state.Cursor)
		if err != nil {
			return err
		}
		recs := make([]*store.Record, 0, len(page.Reports))
		var last uint64
		for i := range page.Reports {
			w := &page.Reports[i]
			k, err := store.ParseKey(w.Key)
			if err != nil || k <= state.Cursor || k <= last {
				return fmt.Errorf("answer out of order: key %q after %x", w.Key, max(state.Cursor, last))
			}
			last = k
			if rec, err := w.Record(); err == nil {
				recs = append(recs, rec)
			} // else: not a record; the store would reject it too
		}
		if len(recs) > 0 {
			if _, err := p.st.SubmitBatch(recs); err != nil {
				return err
			}
		}
		if last != 0 {
			state.Cursor = last
		}
		done := page.NextCursor == nil
		if done {
			state.Synced = time.Now()
		}
		if err := p.st.SetPeer(p.url, state); err != nil {
			return err
		}
		if done {
			return nil
		}
		if len(page.Reports) == 0 {
			return errors.New("an empty page with a next cursor")
		}
	}
	return ctx.Err()
}

// page asks the peer for the records after cursor.
func (p *puller) page(ctx context.Context, cursor uint64) (*peerPageBody, error) {
	q := url.Values{"from": {"0"}, "limit": {fmt.Sprint(peerPage)}}
	if cursor != 0 {
		q.Set("cursor", store.KeyString(cursor))
	}
	req, err := http.NewRequestWithContext(ctx, "GET", p.url+"/api/v1/reports?"+q.Encode(), nil)
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
		return nil, fmt.Errorf("GET /api/v1/reports: %s", resp.Status)
	}
	var body peerPageBody
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxPeerBody))
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("GET /api/v1/reports: %v", err)
	}
	if len(body.Reports) > peerPage {
		return nil, fmt.Errorf("GET /api/v1/reports: %d records, more than asked", len(body.Reports))
	}
	return &body, nil
}
