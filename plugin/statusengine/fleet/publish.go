package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// publisher empties the store's outbox into the stream: a batch of entries
// is published at once (asynchronously), and the entries whose messages
// the stream acknowledged are deleted; the others are published again in
// the next round. Each message is a record's NDJSON line (the export's),
// with Nats-Msg-Id the record's de-duplication identity, so the stream
// keeps one copy of a report two servers both publish within its
// duplicates window, and every consumer stores it once in any case.
type publisher struct {
	cfg    Config
	st     *store.Store
	js     jetstream.JetStream
	nc     *nats.Conn
	stream *streamOnce
	logged logEvery

	// after is the outbox entry the next round reads after: the entries
	// up to it were acknowledged, or are kept acknowledged (acked).
	after uint64
	// acked are the entries the stream acknowledged, oldest first, kept
	// for keepAcked before they are deleted. A stream acknowledges a
	// message once its replicas hold it in memory: NATS servers that all
	// die at once (kill -9, a power cut) can lose the last messages they
	// acknowledged (measured: 32 with nats-server 2.9.10, a 3-node
	// cluster killed under load). So after each reconnection (reconnects
	// changes) every entry still kept is published again: the stream drops
	// the copies it holds (its duplicates window is as long), and takes
	// again what it lost. Deleting is also a write transaction of its own
	// (a commit), so it is done at most once a second.
	acked []ackedEntry
	// isAcked holds the seqs in acked. A batch that fails in part is
	// published again, so its entries are acknowledged out of seq order:
	// a seq below the last one acknowledged is new all the same (taking
	// only seqs above the last left such entries in the outbox for good:
	// TestNoteOutOfOrder).
	isAcked    map[uint64]bool
	kept       *atomic.Int64 // len(acked), for the gauge
	deleted    time.Time
	reconnects *atomic.Uint64 // counted by the connection's handler
	seen       uint64         // reconnects when the last round read
	yield      *yielder
}

// ackedEntry is an outbox entry the stream acknowledged, and when.
type ackedEntry struct {
	seq uint64
	at  time.Time
}

// Bounds of the entries kept after their acknowledgement.
const (
	keepAcked   = 2 * time.Minute // the stream's duplicates window (ensureStream)
	deleteEvery = time.Second
	maxAcked    = 1 << 18 // 2 minutes at about 2,000 reports a second; past it the oldest go early
)

func (p *publisher) run(ctx context.Context) {
	defer p.flush(true) // what was acknowledged leaves the outbox
	wait := time.Duration(0)
	for sleep(ctx, wait) {
		if len(p.acked) > 0 && time.Since(p.deleted) >= deleteEvery {
			if err := p.flush(false); err != nil {
				p.fail(ctx, err, &wait)
				continue
			}
		}
		if !p.nc.IsConnected() {
			// A request would wait in the client's buffer for its timeout.
			p.fail(ctx, errNotConnected, &wait)
			continue
		}
		if r := p.reconnects.Load(); r != p.seen {
			p.seen, p.after = r, 0 // publish again what is kept (see acked)
		}
		if err := p.stream.ensure(ctx, p.js, p.cfg); err != nil {
			p.fail(ctx, fmt.Errorf("stream %s: %w", p.cfg.Stream, err), &wait)
			continue
		}
		n, err := p.round(ctx)
		switch {
		case err != nil:
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) {
				p.stream.lost() // made again by the next round
			}
			p.fail(ctx, err, &wait)
		case n == 0:
			wait = 0
			p.idle(ctx)
		default:
			wait = p.yield.pause()
		}
	}
}

// idle waits, after a round that found the outbox empty, until the store
// committed a record of its own (store.OwnStored, an atomic load every
// ownPoll), or idlePoll: a report is published within ownPoll of its
// commit, without reading the outbox more often.
func (p *publisher) idle(ctx context.Context) {
	own := p.st.OwnStored()
	for waited := time.Duration(0); waited < idlePoll && p.st.OwnStored() == own; waited += ownPoll {
		if !sleep(ctx, ownPoll) {
			return
		}
	}
}

// gauge sets the outbox gauge every second, whatever the publisher is
// doing (it may be backing off for seconds). Entries kept after their
// acknowledgement are not counted.
func (p *publisher) gauge(ctx context.Context) {
	for {
		outboxBacklog.WithLabelValues(p.cfg.Stream).Set(float64(p.waiting()))
		if !sleep(ctx, time.Second) {
			return
		}
	}
}

// waiting counts the outbox entries the stream has not acknowledged: those
// kept after their acknowledgement do not wait.
func (p *publisher) waiting() int {
	return max(0, p.st.OutboxLen()-int(p.kept.Load()))
}

// fail counts and logs a failed round, and backs off.
func (p *publisher) fail(ctx context.Context, err error, wait *time.Duration) {
	if ctx.Err() != nil {
		return
	}
	publishErrors.WithLabelValues(p.cfg.Stream).Inc()
	*wait = backoff(*wait)
	p.logged.warn("jetstream: publishing to %s: %v (retrying in %v; reports wait in the outbox)", p.cfg.Stream, err, *wait)
}

// flush deletes from the outbox the acknowledged entries kept for
// keepAcked, and the oldest past maxAcked; all of them when all is set.
func (p *publisher) flush(all bool) error {
	n := 0
	for n < len(p.acked) && (all || time.Since(p.acked[n].at) >= keepAcked || len(p.acked)-n > maxAcked) {
		n++
	}
	if n == 0 {
		return nil
	}
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = p.acked[i].seq
	}
	if err := p.st.OutboxDone(seqs); err != nil {
		return err
	}
	for _, q := range seqs {
		delete(p.isAcked, q)
	}
	p.acked = append(p.acked[:0], p.acked[n:]...)
	p.kept.Store(int64(len(p.acked)))
	p.deleted = time.Now()
	return nil
}

// note keeps the acknowledged entries done (in the order of their
// sequence numbers; those published again are kept once, at their first
// acknowledgement).
func (p *publisher) note(done []uint64) {
	now := time.Now()
	if p.isAcked == nil {
		p.isAcked = map[uint64]bool{}
	}
	for _, q := range done {
		if !p.isAcked[q] {
			p.acked = append(p.acked, ackedEntry{q, now})
			p.isAcked[q] = true
		}
	}
	p.kept.Store(int64(len(p.acked)))
}

// round publishes one batch of the outbox after p.after and notes the
// entries the stream acknowledged, for flush; it says how many.
func (p *publisher) round(ctx context.Context) (int, error) {
	es, err := p.st.Outbox(p.after, publishBatch)
	if err != nil || len(es) == 0 {
		return 0, err
	}
	type sent struct {
		seq uint64
		ack jetstream.PubAckFuture
	}
	var (
		done     []uint64
		inFlight []sent
		firstErr error
		buf      bytes.Buffer
	)
	w := record.NewNDJSONWriter(&buf)
	for i := range es {
		e := &es[i]
		if e.Gone {
			done = append(done, e.Seq) // retention took it: nothing to publish
			continue
		}
		buf.Reset()
		if err := w.Write(&e.Record); err != nil {
			done = append(done, e.Seq) // cannot be written: never will be
			continue
		}
		m := nats.NewMsg(p.cfg.Subject())
		m.Data = bytes.TrimSuffix(bytes.Clone(buf.Bytes()), []byte("\n"))
		m.Header.Set(jetstream.MsgIDHeader, p.st.DedupID(&e.Record))
		f, err := p.js.PublishMsgAsync(m, jetstream.WithExpectStream(p.cfg.Stream))
		if err != nil {
			firstErr = err
			break
		}
		inFlight = append(inFlight, sent{e.Seq, f})
	}
	timeout := time.NewTimer(requestTimeout)
	defer timeout.Stop()
wait:
	for _, s := range inFlight {
		select {
		case <-s.ack.Ok():
			done = append(done, s.seq)
		case err := <-s.ack.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum {
				// The stream will never take it (its max_msg_size): kept,
				// it would be published again in every round.
				done = append(done, s.seq)
				p.logged.warn("jetstream: a record larger than stream %s takes was not published: %v", p.cfg.Stream, err)
			}
			if firstErr == nil {
				firstErr = err
			}
		case <-timeout.C:
			// The rest are published again in the next round (the
			// stream drops the copies it already holds).
			firstErr = fmt.Errorf("no acknowledgement within %v", requestTimeout)
			break wait
		case <-ctx.Done():
			firstErr = ctx.Err()
			break wait
		}
	}
	slices.Sort(done)
	p.note(done)
	if firstErr == nil {
		p.after = es[len(es)-1].Seq
	} else {
		p.after = es[0].Seq - 1 // this batch again: the stream drops what it took
	}
	return len(done), firstErr
}
