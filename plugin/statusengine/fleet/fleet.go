// Package fleet shares a name server's reports with the other servers of a
// fleet, and with any other reader, through a NATS JetStream stream: each
// server publishes the records it stored itself from its store's outbox
// (store.Outbox), under a subject of its own, and stores what the stream
// holds through a durable consumer of its own, as records from elsewhere
// (store.SubmitPulled: validated, de-duplicated). The HTTP mesh of the
// peers property does the same for two or three servers with nothing else
// to run; this is for a fleet, or a feed other systems read.
//
// Nothing here is on the DNS path: an answer waits for the store only, and
// the outbox, in the store's file, holds what the stream has not yet
// acknowledged through a NATS outage, a restart or a kill -9.
package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

var log = clog.NewWithPlugin("statusengine")

// Defaults of the jetstream property.
const (
	DefaultStream   = "STATUSENGINE"
	DefaultReplicas = 1
	DefaultMaxAge   = 400 * 24 * time.Hour
	// MaxRecordBytes bounds one message taken from the stream (a record's
	// line is well under 2 KiB), and is the stream's max_msg_size when
	// this server creates it: a larger message is refused by the stream,
	// or dropped by the consumer as too large.
	MaxRecordBytes = 64 << 10
)

// Bounds of the publisher and the consumer.
const (
	publishBatch   = 512                    // outbox entries published at once
	fetchBatch     = 256                    // messages fetched at once: at most 256 x 1 MiB (NATS's max_payload)
	idlePoll       = 200 * time.Millisecond // the publisher's longest wait for an own record, the backoff's first step
	ownPoll        = 10 * time.Millisecond  // how often an idle publisher looks for a new own record (an atomic load)
	roundGap       = 50 * time.Millisecond  // the consumer's wait after a batch that was not full
	requestTimeout = 10 * time.Second       // one JetStream API request
	ackWait        = 30 * time.Second       // a message delivered and not acknowledged comes again after this
	maxBackoff     = 5 * time.Second        // a request to a NATS that is down costs little

	// While this server stores more than busyRate reports of its own a
	// second, the publisher and the consumer each take one batch every
	// busyPause (see yielder).
	busyRate   = 2000
	busyWindow = 250 * time.Millisecond
	busyStep   = 50 * time.Millisecond
	busyPause  = 3 * time.Second
)

// Config is the jetstream property of a statusengine block.
type Config struct {
	URLs     []string
	Name     string        // this server: its subject and its consumer
	Stream   string        // the stream's name
	Replicas int           // only when this server creates the stream
	MaxAge   time.Duration // only when this server creates the stream
	Token    string
	Creds    string // a credentials file (JWT and NKey)
	User     string
	Password string
	TLS      *tls.Config // nil: plain, unless a URL says tls://
	Zones    []string    // records of other zones are refused from the stream
	// Reject, when set, counts a message of the stream that is not stored
	// (reason: size, undecodable, zone, invalid): the one family of
	// records from elsewhere, coredns_statusengine_peer_rejected_total.
	Reject func(reason string)
}

// Subject is the subject this server publishes under:
// <stream in lower case>.<name>.
func (c Config) Subject() string { return strings.ToLower(c.Stream) + "." + c.Name }

// subjects are the stream's, when this server creates it.
func (c Config) subjects() []string { return []string{strings.ToLower(c.Stream) + ".>"} }

// Reasons a message of the stream is not stored.
const (
	RejectSize        = "size"
	RejectUndecodable = "undecodable"
	RejectZone        = "zone"
	RejectInvalid     = "invalid"
)

// Feed is a running publisher and consumer for one store.
type Feed struct {
	p      *publisher
	nc     *nats.Conn
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start connects to NATS (in the background: a server that is down is
// retried for good) and starts the publisher and the consumer. It fails
// only on a configuration the NATS client refuses, or when the store's
// outbox cannot be made.
func Start(cfg Config, st *store.Store) (*Feed, error) {
	if err := st.EnableOutbox(); err != nil {
		return nil, err
	}
	reconnects := &atomic.Uint64{}
	opts := []nats.Option{
		nats.Name("statusengine " + cfg.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warningf("jetstream: disconnected from NATS: %v (reconnecting; reports wait in the outbox)", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			reconnects.Add(1)
			log.Infof("jetstream: connected to %s", nc.ConnectedUrlRedacted())
		}),
	}
	switch {
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.Creds != "":
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLS != nil {
		opts = append(opts, nats.Secure(cfg.TLS))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(publishBatch),
		jetstream.WithPublishAsyncTimeout(requestTimeout))
	if err != nil {
		nc.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Feed{nc: nc, cancel: cancel}
	// Every counter exists at 0 from the start (see peers.go's
	// startReplication for why).
	publishErrors.WithLabelValues(cfg.Stream)
	consumeErrors.WithLabelValues(cfg.Stream)
	consumerPending.WithLabelValues(cfg.Stream)
	once := &streamOnce{}
	y := &yielder{stored: st.OwnStored}
	p := &publisher{cfg: cfg, st: st, js: js, nc: nc, stream: once, kept: &atomic.Int64{}, reconnects: reconnects, yield: y}
	c := &consumer{cfg: cfg, st: st, js: js, nc: nc, stream: once, zones: store.ZoneSet(cfg.Zones), reconnects: reconnects, yield: y}
	f.p = p
	f.wg.Add(3)
	go func() {
		defer f.wg.Done()
		p.run(ctx)
	}()
	go func() {
		defer f.wg.Done()
		p.gauge(ctx)
	}()
	go func() {
		defer f.wg.Done()
		c.run(ctx)
	}()
	return f, nil
}

// Waiting is the number of records in the outbox that the stream has not
// acknowledged (what coredns_statusengine_jetstream_outbox shows).
func (f *Feed) Waiting() int { return f.p.waiting() }

// Stop ends the publisher and the consumer, waits for them and closes the
// connection. What the stream has not acknowledged stays in the outbox.
func (f *Feed) Stop() {
	if f == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
	f.nc.Close()
}

// streamOnce makes the publisher and the consumer look for (or create)
// the stream one at a time, and once it is found, not again.
type streamOnce struct {
	mu    sync.Mutex
	found bool
}

// ensure is ensureStream, once found.
func (o *streamOnce) ensure(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.found {
		return nil
	}
	if _, err := ensureStream(ctx, js, cfg); err != nil {
		return err
	}
	o.found = true
	return nil
}

// lost forgets that the stream was found: it was deleted (an operator's
// doing), and is looked for, or made, again.
func (o *streamOnce) lost() {
	o.mu.Lock()
	o.found = false
	o.mu.Unlock()
}

// ensureStream finds the stream, or creates it with the configured
// subjects, replicas and age; an existing stream is never changed.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s, err := js.Stream(ctx, cfg.Stream)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return s, err
	}
	s, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "statusengine reports, one NDJSON record a message",
		Subjects:    cfg.subjects(),
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.MaxAge,
		MaxMsgSize:  MaxRecordBytes,
		Duplicates:  2 * time.Minute,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.Stream(ctx, cfg.Stream) // another server made it first
	}
	if err == nil {
		log.Infof("jetstream: created stream %s (subjects %s, %d replicas, max_age %s)", cfg.Stream, cfg.subjects()[0], cfg.Replicas, days(cfg.MaxAge))
	}
	return s, err
}

// errNotConnected is a round not tried: the client is not connected (it
// reconnects on its own).
var errNotConnected = errors.New("not connected to a NATS server")

// days writes d in whole days when it is some, as max_age is written.
func days(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// sleep waits d, or less when ctx ends; it tells whether ctx is still on.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff doubles wait from idlePoll up to maxBackoff.
func backoff(wait time.Duration) time.Duration {
	return min(max(wait*2, idlePoll), maxBackoff)
}

// logEvery rate-limits a kind of log line to one a minute.
type logEvery struct{ last time.Time }

func (l *logEvery) info(format string, a ...any) {
	if time.Since(l.last) > time.Minute {
		log.Infof(format, a...)
		l.last = time.Now()
	}
}

func (l *logEvery) warn(format string, a ...any) {
	if time.Since(l.last) > time.Minute {
		log.Warningf(format, a...)
		l.last = time.Now()
	}
}
