package fleet

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/statusengine/statusengine/internal/natstest"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

const testZone = "status.modsecurity.org."

func beacon(i int) string {
	return fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i)
}

func newRecord(t testing.TB, i int, received time.Time) *record.Record {
	t.Helper()
	rep, err := codec.ParseBeacon(beacon(i))
	if err != nil {
		t.Fatal(err)
	}
	rep.Epoch, rep.HasEpoch = 1795549302, true
	return &record.Record{Received: received, Zone: testZone, Resolver: netip.MustParseAddr("192.0.2.53"), Report: rep}
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func startFeed(t testing.TB, st *store.Store, name string, urls ...string) *Feed {
	t.Helper()
	f, err := Start(Config{URLs: urls, Name: name, Stream: DefaultStream, Replicas: 1, MaxAge: time.Hour,
		Zones: []string{testZone}}, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

// waitOutbox waits up to d until f's outbox is empty, and says how many
// records still wait.
func waitOutbox(f *Feed, d time.Duration) int {
	deadline := time.Now().Add(d)
	n := f.Waiting()
	for ; n != 0 && time.Now().Before(deadline); n = f.Waiting() {
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

// beacons reads every record of st as its beacon, failing on one held twice.
func beacons(t testing.TB, st *store.Store) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	err := st.Each(time.Unix(1, 0), time.Unix(1<<33-1, 0), 0, func(r *record.Record) error {
		if got[r.Report.Beacon] {
			return fmt.Errorf("%s held twice", r.Report.Beacon)
		}
		got[r.Report.Beacon] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitAll waits up to 20 s until every store holds exactly want records.
func waitAll(t testing.TB, want int, sts ...*store.Store) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		done := true
		for _, st := range sts {
			st.Sync()
			if st.Count() != int64(want) {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			for i, st := range sts {
				n := st.OutboxLen()
				t.Logf("store %d: %d records, %d entries in its outbox", i, st.Count(), n)
			}
			t.Fatalf("not every store holds the %d records after 20 s", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, st := range sts {
		if n := len(beacons(t, st)); n != want {
			t.Errorf("store %d: %d distinct records, want %d", i, n, want)
		}
	}
}

// TestFeedTwoStores: two stores, each with its feed, one nats-server:
// reports stored by one (live, an import) and by both reach the other once,
// and both outboxes empty.
func TestFeedTwoStores(t *testing.T) {
	ns := natstest.Start(t)
	a, b := openStore(t), openStore(t)
	fa := startFeed(t, a, "ns1", ns.URL())
	fb := startFeed(t, b, "ns2", ns.URL())
	now := time.Now()
	for i := range 50 {
		if o, err := a.Submit(newRecord(t, i, now)); o != store.Stored || err != nil {
			t.Fatal(o, err)
		}
		if o, err := b.Submit(newRecord(t, 100+i, now)); o != store.Stored || err != nil {
			t.Fatal(o, err)
		}
	}
	for i := range 10 { // a report both servers received
		a.Submit(newRecord(t, 200+i, now))
		b.Submit(newRecord(t, 200+i, now))
	}
	if _, err := a.SubmitBatch([]*record.Record{newRecord(t, 300, now.Add(-48*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	waitAll(t, 111, a, b)
	// Idle, the fetches that wait and end empty are not errors.
	before := testutil.ToFloat64(consumeErrors.WithLabelValues(DefaultStream)) + testutil.ToFloat64(publishErrors.WithLabelValues(DefaultStream))
	time.Sleep(3 * time.Second)
	if after := testutil.ToFloat64(consumeErrors.WithLabelValues(DefaultStream)) + testutil.ToFloat64(publishErrors.WithLabelValues(DefaultStream)); after != before {
		t.Errorf("idle for 3 s: errors went from %v to %v", before, after)
	}
	for i, f := range []*Feed{fa, fb} {
		if n := waitOutbox(f, 5*time.Second); n != 0 {
			t.Fatalf("store %d: %d records still in the outbox", i, n)
		}
	}
}

// TestFeedStreamDeleted: the stream deleted under running feeds (an
// operator's mistake) is made again, and records go on reaching the other
// store; a record stored before, already acknowledged, is not published
// again (the stream is the feed, the stores the archive).
func TestFeedStreamDeleted(t *testing.T) {
	ns := natstest.Start(t)
	a, b := openStore(t), openStore(t)
	startFeed(t, a, "ns1", ns.URL())
	startFeed(t, b, "ns2", ns.URL())
	now := time.Now()
	a.Submit(newRecord(t, 1, now))
	waitAll(t, 1, a, b)
	js := natstest.Admin(t, ns.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, DefaultStream); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 5; i++ {
		a.Submit(newRecord(t, i, now))
		time.Sleep(300 * time.Millisecond)
	}
	waitAll(t, 5, a, b)
}

// TestFeedRecordTooLarge: on a stream the operator made with a message
// limit below a record's line, the records are counted as publish errors
// and dropped from the outbox, not published again in every round.
func TestFeedRecordTooLarge(t *testing.T) {
	ns := natstest.Start(t)
	js := natstest.Admin(t, ns.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: DefaultStream, Subjects: []string{"statusengine.>"}, MaxMsgSize: 100}); err != nil {
		t.Fatal(err)
	}
	a := openStore(t)
	fa := startFeed(t, a, "ns1", ns.URL())
	for i := range 3 {
		a.Submit(newRecord(t, i, time.Now()))
	}
	if n := waitOutbox(fa, 20*time.Second); n != 0 {
		t.Fatalf("%d records still in the outbox", n)
	}
	s, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 0 {
		t.Errorf("the stream holds %d messages, want 0", info.State.Msgs)
	}
}

// TestFeedAuth: a feed with the NATS server's token, or user and password,
// publishes (its outbox empties); one with a wrong token is refused by
// NATS, retries, and keeps its record in the outbox.
func TestFeedAuth(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		cfg    Config
		stored bool
	}{
		{"token", []string{"--auth", "s3cret"}, Config{Token: "s3cret"}, true},
		{"user", []string{"--user", "se", "--pass", "pw"}, Config{User: "se", Password: "pw"}, true},
		{"wrong token", []string{"--auth", "s3cret"}, Config{Token: "guess"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := natstest.Start(t, c.args...)
			a := openStore(t)
			cfg := c.cfg
			cfg.URLs, cfg.Name, cfg.Stream, cfg.Replicas, cfg.MaxAge, cfg.Zones = []string{ns.URL()}, "ns1", DefaultStream, 1, time.Hour, []string{testZone}
			f, err := Start(cfg, a)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Stop()
			a.Submit(newRecord(t, 1, time.Now()))
			n := waitOutbox(f, 5*time.Second)
			if published := n == 0; published != c.stored {
				t.Errorf("%d records waiting in the outbox after 5 s; want published %v", n, c.stored)
			}
		})
	}
}

// TestFeedAckAllConsumerMadeAgain: a durable consumer an earlier
// statusengine made with AckAll (a lost batch then got acknowledged by the
// next one) is made again with each message acknowledged, from its first
// message not acknowledged: what it had taken is not taken again, what it
// had not is.
func TestFeedAckAllConsumerMadeAgain(t *testing.T) {
	ns := natstest.Start(t)
	a, b := openStore(t), openStore(t)
	startFeed(t, a, "ns1", ns.URL())
	now := time.Now()
	for i := range 5 {
		a.Submit(newRecord(t, i, now))
	}
	js := natstest.Admin(t, ns.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var (
		s   jetstream.Stream
		err error
	)
	for s == nil {
		if s, err = js.Stream(ctx, DefaultStream); err != nil && ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	old, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ns2", Description: "statusengine ns2: every record, into its store",
		AckPolicy: jetstream.AckAllPolicy, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for si, _ := s.Info(ctx); si == nil || si.State.Msgs < 5; si, _ = s.Info(ctx) {
		time.Sleep(50 * time.Millisecond)
	}
	// The old consumer took the first two messages and acknowledged them.
	batch, err := old.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var last jetstream.Msg
	for m := range batch.Messages() {
		last = m
	}
	if last == nil {
		t.Fatal("no message fetched")
	}
	if err := last.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	startFeed(t, b, "ns2", ns.URL())
	deadline := time.Now().Add(20 * time.Second)
	for b.Count() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("store b holds %d records, want the 3 not acknowledged", b.Count())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	b.Sync() // what the consumer took is counted
	if n := b.Count(); n != 3 {
		t.Errorf("store b holds %d records, want 3 (messages 3 to 5)", n)
	}
	c, err := s.Consumer(ctx, "ns2")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.CachedInfo().Config.AckPolicy; p != jetstream.AckExplicitPolicy {
		t.Errorf("consumer ns2 acknowledges %v, want explicit", p)
	}
}

// TestAckFloor: a consumer that acknowledged nothing yet, made to start
// at a message, has its floor before that message (nats-server 2.9 says
// 0), so one made again from its floor does not take the stream from 1.
func TestAckFloor(t *testing.T) {
	byStart := jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 40}
	for _, c := range []struct {
		name string
		ci   *jetstream.ConsumerInfo
		want uint64
	}{
		{"none", nil, 0},
		{"nothing acknowledged, from the start", &jetstream.ConsumerInfo{}, 0},
		{"acknowledged", &jetstream.ConsumerInfo{AckFloor: jetstream.SequenceInfo{Consumer: 3, Stream: 57}, Config: byStart}, 57},
		{"nothing acknowledged, made to start at 40", &jetstream.ConsumerInfo{Config: byStart}, 39},
	} {
		if got := ackFloor(c.ci); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
