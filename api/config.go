package api

import (
	"context"
	"net/http"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/advisory"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// Config is what the Corefile tells the API. A reload hands the Server a new
// one; every request sees one Config, and one store, from start to end.
type Config struct {
	// Token, when set, guards the raw records: /api/v1/reports,
	// /api/v1/export, /api/v1/backup, /api/v1/import and the beacon of the
	// compatible endpoints need "Authorization: Bearer <Token>".
	Token string
	// ReadToken, when set (with Token), opens GET /api/v1/reports and
	// /api/v1/imports and nothing else: the token to give peers, which
	// replicate through them.
	// It gets 403 where only Token opens.
	ReadToken string
	// Zones, when set, are the zones whose records an import accepts;
	// records of other zones are rejected, line by line.
	Zones []string
	// Titles are the status page's titles of zones (the Corefile's title),
	// by zone; a zone without one is named by itself.
	Titles map[string]string
	// CityDatabase tells that a City database geolocates reports, so the
	// map has points.
	CityDatabase bool
	// Limits bound what requests may cost.
	Limits Limits
	// PublicMin is the public floor of answers to requests without the
	// token (see Floor); zero means DefaultFloor.
	PublicMin Floor
	// Advisories are the OSV advisories /api/v1/exposure counts
	// installations against; nil means the embedded default set
	// (advisory.Default).
	Advisories *advisory.Set
}

// Limits bound the cost of requests. A zero field takes its default.
type Limits struct {
	// MaxRequests bounds the requests served at once, of any kind.
	MaxRequests int
	// MaxExpensive bounds the expensive requests served at once: the
	// compatible ranges, filtered reports, export, backup and import. With
	// a token set, requests that carry it have MaxExpensive of their own,
	// so public clients cannot crowd out the operator's.
	MaxExpensive int
	// QueueWait is how long a request waits for a free slot before it gets
	// 503 with Retry-After.
	QueueWait time.Duration
	// WriteTimeout is the time an answer has to go out; an answer gets a
	// second more for every MinRate bytes it sends.
	WriteTimeout time.Duration
	// ReadTimeout is the time a request has to send its body; an import
	// gets a second more for every MinRate bytes it sends.
	ReadTimeout time.Duration
	// MinRate, in bytes a second, is the average a long answer or upload
	// must keep up: a client that reads (or sends) slower falls behind its
	// deadline and is cut.
	MinRate int64
	// CacheBytes and CacheEntries bound the cache of summary and map
	// answers; an answer larger than a quarter of CacheBytes is not kept.
	CacheBytes   int64
	CacheEntries int
}

// Defaults of Limits.
const (
	DefaultMaxRequests  = 64
	DefaultMaxExpensive = 1
	DefaultQueueWait    = time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultReadTimeout  = 10 * time.Second
	DefaultMinRate      = 32 << 10
	DefaultCacheBytes   = 32 << 20
	DefaultCacheEntries = 64
)

// WithDefaults fills the zero fields of l with the defaults.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxRequests, DefaultMaxRequests)
	def(&l.MaxExpensive, DefaultMaxExpensive)
	def(&l.CacheEntries, DefaultCacheEntries)
	if l.QueueWait <= 0 {
		l.QueueWait = DefaultQueueWait
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.MinRate <= 0 {
		l.MinRate = DefaultMinRate
	}
	if l.CacheBytes <= 0 {
		l.CacheBytes = DefaultCacheBytes
	}
	return l
}

// state is what one request works with: swapped whole on reload.
type state struct {
	cfg   Config
	store *store.Store

	all     *semaphore // every request
	public  *semaphore // expensive requests without the token
	private *semaphore // expensive requests with it (the same as public without a token)
}

type stateKey struct{}

// Configure points the API at st with c, at once for the requests that
// follow; requests under way finish with what they started with.
func (s *Server) Configure(st *store.Store, c Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Limits = c.Limits.WithDefaults()
	if c.PublicMin == (Floor{}) {
		c.PublicMin = DefaultFloor
	}
	old := s.state.Load()
	if old == nil {
		old = &state{}
	}
	next := &state{cfg: c, store: st}
	// A semaphore of unchanged size is kept, so that a reload does not let
	// a second set of requests in beside the ones running.
	keep := func(prev *semaphore, n int) *semaphore {
		if prev != nil && prev.size() == n {
			return prev
		}
		return newSemaphore(n)
	}
	next.all = keep(old.all, c.Limits.MaxRequests)
	next.public = keep(old.public, c.Limits.MaxExpensive)
	next.private = next.public
	if c.Token != "" {
		prev := old.private
		if prev == old.public {
			prev = nil // it was shared: the token pool starts empty
		}
		next.private = keep(prev, c.Limits.MaxExpensive)
	}
	s.state.Store(next)
	if old.store != nil && old.store != st {
		s.cutStreams(old.store)
	}
}

// SetStore points the API at st, keeping the configuration.
func (s *Server) SetStore(st *store.Store) { s.Configure(st, s.state.Load().cfg) }

// SetConfig applies c to the requests that follow, keeping the store.
func (s *Server) SetConfig(c Config) { s.Configure(s.state.Load().store, c) }

// stateOf is the state r started with.
func (s *Server) stateOf(r *http.Request) *state {
	if st, ok := r.Context().Value(stateKey{}).(*state); ok {
		return st
	}
	return s.state.Load()
}

func withState(r *http.Request, st *state) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
}

// storeOf is the store r reads.
func (s *Server) storeOf(r *http.Request) *store.Store { return s.stateOf(r).store }

// configOf is the configuration r is served with.
func (s *Server) configOf(r *http.Request) *Config { return &s.stateOf(r).cfg }
