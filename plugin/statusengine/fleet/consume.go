package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// consumer stores what the stream holds, through this server's durable
// consumer (named as the server): a batch of messages is fetched, each is
// read as a record's line and checked (its size, its zone), the records
// are stored as a peer's (store.SubmitPulled: validated, de-duplicated,
// not listed for the outbox or the peers' imports), and then each of their
// messages is acknowledged. A message that is not a record is
// acknowledged at once, counted and dropped, so it never blocks the
// consumer; the records this server published come back and cost a
// duplicate check (SubmitPulled answers those committed lately without its
// writer). The records the store cannot take are not acknowledged: the
// stream delivers them again.
type consumer struct {
	cfg    Config
	st     *store.Store
	js     jetstream.JetStream
	nc     *nats.Conn
	stream *streamOnce
	zones  map[string]bool
	// reconnects is counted by the connection's handler; seen is its
	// value when the consumer was last opened.
	reconnects *atomic.Uint64
	seen       uint64
	logged     logEvery
	yield      *yielder
	// rejectLogged rate-limits the lines about dropped messages.
	rejectLogged logEvery
}

func (c *consumer) run(ctx context.Context) {
	var cons jetstream.Consumer
	wait := time.Duration(0)
	idle := false // the last round found nothing
	for sleep(ctx, wait) {
		if !c.nc.IsConnected() {
			c.fail(ctx, errNotConnected, &wait)
			continue
		}
		if r := c.reconnects.Load(); r != c.seen {
			c.seen, cons = r, nil // looked at again (see open)
		}
		if cons == nil {
			var err error
			if cons, err = c.open(ctx); err != nil {
				c.fail(ctx, err, &wait)
				continue
			}
		}
		n, err := c.round(cons, idle)
		idle = n == 0 && err == nil
		switch {
		case err != nil:
			c.fail(ctx, err, &wait)
			// The consumer is looked up (or made) again: it may have been
			// deleted behind our back, with its stream.
			cons = nil
			if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
				errors.Is(err, jetstream.ErrConsumerNotFound) {
				c.stream.lost()
			}
		case n == 0:
			wait = 0 // the fetch itself waited
		case n < fetchBatch:
			// Not a full batch: the next is taken a little later, so that a
			// steady flow is stored in a few commits a second, not one a
			// message.
			wait = max(c.yield.pause(), roundGap)
		default:
			wait = c.yield.pause()
		}
	}
}

// open finds or makes the stream and this server's durable consumer over
// all of it. A consumer that is ahead of its stream (it was delivered
// messages the stream no longer has: every NATS server of the stream died
// at once and lost the last ones) would skip as many new messages, whose
// sequence numbers the stream gives again: it is made again from its first
// message not acknowledged, or the stream's next, whichever is first.
func (c *consumer) open(ctx context.Context) (jetstream.Consumer, error) {
	if err := c.stream.ensure(ctx, c.js, c.cfg); err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.cfg.Stream, err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.cfg.Stream, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       c.cfg.Name,
		Description:   "statusengine " + c.cfg.Name + ": every record, into its store",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// Each message acknowledged by itself, never "all up to this one":
		// a batch lost on its way (the client's NATS server killed while
		// it delivered) stays pending and comes again after AckWait, where
		// acknowledging the next batch's last message would have
		// acknowledged the lost ones too, and this server would never have
		// stored them (seen when nodes of a cluster were killed).
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: 4 * fetchBatch,
	}
	cons, err := s.Consumer(ctx, c.cfg.Name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = s.CreateConsumer(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", c.cfg.Name, err)
	}
	si, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.cfg.Stream, err)
	}
	// remake deletes the consumer and makes it again from stream message
	// start on.
	remake := func(start uint64) (jetstream.Consumer, error) {
		if err := s.DeleteConsumer(ctx, c.cfg.Name); err != nil {
			return nil, fmt.Errorf("consumer %s: %w", c.cfg.Name, err)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
		cons, err := s.CreateConsumer(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", c.cfg.Name, err)
		}
		return cons, nil
	}
	ci := cons.CachedInfo()
	if ci != nil && ci.Config.AckPolicy != cfg.AckPolicy && strings.HasPrefix(ci.Config.Description, "statusengine ") {
		// Made by an earlier statusengine with AckAll: an acknowledgement
		// policy cannot be changed, so it is made again from its first
		// message not acknowledged.
		start := ackFloor(ci) + 1
		log.Infof("jetstream: consumer %s acknowledged all up to a message; made again from message %d, each acknowledged", c.cfg.Name, start)
		if cons, err = remake(start); err != nil {
			return nil, err
		}
		ci = cons.CachedInfo()
	}
	if ci != nil && ci.Delivered.Stream > si.State.LastSeq {
		// From the first message not acknowledged, when the stream still
		// has it: the stream's info can come from a replica behind its
		// leader (one node of a cluster killed), and starting after the
		// LastSeq it gave would skip what the others then deliver. What is
		// delivered twice costs a duplicate check.
		start := min(ackFloor(ci), si.State.LastSeq) + 1
		log.Warningf("jetstream: consumer %s was delivered up to message %d of %s, which now ends at %d (its NATS servers lost their last messages): made again from message %d",
			c.cfg.Name, ci.Delivered.Stream, c.cfg.Stream, si.State.LastSeq, start)
		return remake(start)
	}
	return cons, nil
}

// ackFloor is the highest stream sequence the consumer acknowledged all
// messages up to, from the server. A consumer that acknowledged nothing
// yet gives 0 (nats-server 2.9 does so even when it was made to start
// later): its floor is then the message before its first, else a
// consumer made again from it would take the stream from message 1.
func ackFloor(ci *jetstream.ConsumerInfo) uint64 {
	switch {
	case ci == nil:
		return 0
	case ci.AckFloor.Consumer > 0:
		return ci.AckFloor.Stream
	case ci.Config.DeliverPolicy == jetstream.DeliverByStartSequencePolicy && ci.Config.OptStartSeq > 0:
		return ci.Config.OptStartSeq - 1
	}
	return 0
}

// fail counts and logs a failed round, and backs off.
func (c *consumer) fail(ctx context.Context, err error, wait *time.Duration) {
	if ctx.Err() != nil {
		return
	}
	consumeErrors.WithLabelValues(c.cfg.Stream).Inc()
	*wait = backoff(*wait)
	c.logged.warn("jetstream: consuming %s: %v (retrying in %v)", c.cfg.Stream, err, *wait)
}

// round fetches one batch, stores its records and acknowledges its
// messages; it says how many messages it took. It takes what the stream
// holds for the consumer at once, up to fetchBatch; after a round that
// found nothing (idle), it waits up to a second for the next message and
// takes that one: a Fetch of a whole batch would wait for the batch to
// fill, and a report would reach this server only as late as the 256th
// after it (seen: a p50 of 0.72 s at 3,000 messages a second).
func (c *consumer) round(cons jetstream.Consumer, idle bool) (int, error) {
	var (
		batch jetstream.MessageBatch
		err   error
	)
	if idle {
		batch, err = cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	} else {
		batch, err = cons.FetchNoWait(fetchBatch)
	}
	if err != nil {
		return 0, err
	}
	var (
		msgs []jetstream.Msg // those whose records go to the store
		recs []*record.Record
		n    int
		last jetstream.Msg
	)
	for m := range batch.Messages() {
		n, last = n+1, m
		rec := c.take(m.Data())
		if rec == nil {
			// Dropped (counted by take): acknowledged at once, and not
			// kept (a message can be 1 MiB), nor counted again should the
			// store fail the batch.
			m.Ack()
			continue
		}
		msgs, recs = append(msgs, m), append(recs, rec)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && n == 0 {
		return 0, err
	}
	if len(recs) > 0 {
		res, err := c.st.SubmitPulled(recs)
		if err != nil {
			return 0, err // not acknowledged: delivered again
		}
		for _, r := range res {
			if r.Outcome == store.Rejected {
				c.reject(RejectInvalid, fmt.Sprintf("a record the store refuses: %v", r.Err))
			}
		}
	}
	// Each message (open says why not AckAll); the client sends them
	// together with its next flush.
	for _, m := range msgs {
		m.Ack()
	}
	pending := 0 // what the stream holds beyond the last message taken
	if last != nil {
		if md, err := last.Metadata(); err == nil {
			pending = int(md.NumPending)
		} else {
			pending = -1
		}
	}
	if pending >= 0 {
		consumerPending.WithLabelValues(c.cfg.Stream).Set(float64(pending))
	}
	return n, nil
}

// take reads one message as a record, or counts why not.
func (c *consumer) take(data []byte) *record.Record {
	if len(data) > MaxRecordBytes {
		c.reject(RejectSize, fmt.Sprintf("a message of %d bytes (at most %d)", len(data), MaxRecordBytes))
		return nil
	}
	rec, err := record.ParseLine(bytes.TrimSpace(data), c.st.Schemas()) // a custom zone's beacon is read by its schema
	if err != nil {
		c.reject(RejectUndecodable, fmt.Sprintf("a message that is not a record: %v", err))
		return nil
	}
	if c.zones != nil && !c.zones[rec.Zone] {
		c.reject(RejectZone, fmt.Sprintf("a record of zone %q, not one this server serves", rec.Zone))
		return nil
	}
	return rec
}

// reject counts a message that is not stored, and logs one line a minute.
func (c *consumer) reject(reason, why string) {
	if c.cfg.Reject != nil {
		c.cfg.Reject(reason)
	}
	c.rejectLogged.warn("jetstream: dropped %s from %s (coredns_statusengine_peer_rejected_total{peer=%q} counts them)", why, c.cfg.Stream, "jetstream:"+c.cfg.Stream)
}
