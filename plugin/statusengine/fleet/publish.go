package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
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
}

func (p *publisher) run(ctx context.Context) {
	wait := time.Duration(0)
	for sleep(ctx, wait) {
		if !p.nc.IsConnected() {
			// A request would wait in the client's buffer for its timeout.
			p.fail(ctx, errNotConnected, &wait)
			continue
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
			wait = idlePoll
		default:
			wait = 0
		}
	}
}

// gauge sets the outbox gauge every second, whatever the publisher is
// doing (it may be backing off for seconds): the count walks the bucket,
// so it is not made per round.
func (p *publisher) gauge(ctx context.Context) {
	for {
		if n, err := p.st.OutboxLen(); err == nil {
			outboxBacklog.WithLabelValues(p.cfg.Stream).Set(float64(n))
		}
		if !sleep(ctx, time.Second) {
			return
		}
	}
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

// round publishes one batch of the outbox and deletes the entries the
// stream acknowledged; it says how many it deleted.
func (p *publisher) round(ctx context.Context) (int, error) {
	es, err := p.st.Outbox(0, publishBatch)
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
	w := store.NewNDJSONWriter(&buf)
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
	if err := p.st.OutboxDone(done); err != nil {
		return 0, err
	}
	return len(done), firstErr
}
