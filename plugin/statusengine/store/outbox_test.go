package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// TestOutbox: once enabled, the records this server stored itself (a live
// report, an import) are listed in the outbox, a peer's record and a
// duplicate are not, the entries survive a reopen, and OutboxDone deletes
// them; before EnableOutbox nothing is listed.
func TestOutbox(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	b := func(i int) string {
		return fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i)
	}
	if _, err := s.Submit(newRecord(t, b(0), 1795549302, now)); err != nil {
		t.Fatal(err)
	}
	if n := s.OutboxLen(); n != 0 {
		t.Fatalf("before EnableOutbox: %d entries, want 0", n)
	}
	if err := s.EnableOutbox(); err != nil {
		t.Fatal(err)
	}
	if o, err := s.Submit(newRecord(t, b(1), 1795549302, now)); o != Stored || err != nil {
		t.Fatalf("live report: %v, %v", o, err)
	}
	if _, err := s.SubmitBatch([]*record.Record{newRecord(t, b(2), 1795549302, now.Add(-time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SubmitPulled([]*record.Record{newRecord(t, b(3), 1795549302, now.Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.Submit(newRecord(t, b(1), 1795549302, now)); o != Duplicate {
		t.Fatalf("the live report again: %v, want Duplicate", o)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openPath(t, s.path)
	es, err := s.Outbox(0, 10)
	if err != nil || len(es) != 2 {
		t.Fatalf("Outbox: %d entries, %v; want 2", len(es), err)
	}
	for i, want := range []string{b(1), b(2)} {
		if es[i].Gone || es[i].Record.Report.Beacon != want {
			t.Errorf("entry %d: %q (gone %v), want %q", i, es[i].Record.Report.Beacon, es[i].Gone, want)
		}
	}
	if es[0].Seq >= es[1].Seq {
		t.Errorf("sequence numbers %d, %d do not grow", es[0].Seq, es[1].Seq)
	}
	if later, _ := s.Outbox(es[0].Seq, 10); len(later) != 1 || later[0].Seq != es[1].Seq {
		t.Errorf("after the first entry: %d entries, want the second", len(later))
	}
	if err := s.OutboxDone([]uint64{es[0].Seq}); err != nil {
		t.Fatal(err)
	}
	if n := s.OutboxLen(); n != 1 {
		t.Errorf("after OutboxDone of one: %d entries, want 1", n)
	}
	// Its identity is the store's de-duplication key: the same for the
	// same start, whatever the receive time; another epoch, another id.
	r1, r2 := newRecord(t, b(1), 1795549302, now), newRecord(t, b(1), 1795549302, now.Add(time.Hour))
	if s.DedupID(r1) != s.DedupID(r2) || s.DedupID(r1) == s.DedupID(newRecord(t, b(1), 1795549303, now)) {
		t.Errorf("DedupID: %s, %s for the same start", s.DedupID(r1), s.DedupID(r2))
	}
}

// TestOutboxRows: a transaction of more own records than a row holds
// writes several rows; reads page through rows and slots by entry id;
// OutboxDone marks slots, keeps a row with slots left and deletes a row
// with none, and OutboxLen follows, across a reopen; a row of one key, as
// builds before rows per commit wrote, reads as one entry.
func TestOutboxRows(t *testing.T) {
	s := openTemp(t)
	if err := s.EnableOutbox(); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	const n = 2*outboxRow + 10
	recs := make([]*record.Record, n)
	for i := range recs {
		recs[i] = newRecord(t, fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i), 1795549302, now.Add(time.Duration(i)*time.Millisecond))
	}
	if _, err := s.SubmitBatch(recs); err != nil {
		t.Fatal(err)
	}
	if got := s.OutboxLen(); got != n {
		t.Fatalf("OutboxLen: %d, want %d", got, n)
	}
	// Read it all in pages of 700: every record once, ids growing.
	var ids []uint64
	seen := map[string]bool{}
	for after := uint64(0); ; {
		es, err := s.Outbox(after, 700)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			if e.Seq <= after || e.Gone || seen[e.Record.Report.Beacon] {
				t.Fatalf("entry %d after %d: gone %v, seen %v", e.Seq, after, e.Gone, seen[e.Record.Report.Beacon])
			}
			if e.Seq&0xffff >= outboxRow {
				t.Fatalf("entry %d: slot %d of a row of at most %d", e.Seq, e.Seq&0xffff, outboxRow)
			}
			seen[e.Record.Report.Beacon] = true
			ids = append(ids, e.Seq)
			after = e.Seq
		}
	}
	if len(ids) != n || ids[0]>>16 == ids[n-1]>>16 {
		t.Fatalf("%d entries in rows %d..%d, want %d in several rows", len(ids), ids[0]>>16, ids[len(ids)-1]>>16, n)
	}
	// The first row wholly and half of the second: the first row goes,
	// the second stays with its other half.
	done := append(slices.Clone(ids[:outboxRow]), ids[outboxRow:outboxRow+outboxRow/2]...)
	if err := s.OutboxDone(append(done, done[:10]...)); err != nil { // given twice: counted once
		t.Fatal(err)
	}
	want := n - len(done)
	if got := s.OutboxLen(); got != want {
		t.Errorf("OutboxLen after OutboxDone: %d, want %d", got, want)
	}
	s.Close()
	s = openPath(t, s.path)
	if got := s.OutboxLen(); got != want {
		t.Errorf("OutboxLen after a reopen: %d, want %d", got, want)
	}
	es, err := s.Outbox(0, n)
	if err != nil || len(es) != want || es[0].Seq != ids[len(done)] {
		t.Fatalf("Outbox after OutboxDone: %d entries from %d, %v; want %d from %d", len(es), es[0].Seq, err, want, ids[len(done)])
	}
	err = s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(schema.Outbox).Get(binary.BigEndian.AppendUint64(nil, ids[0]>>16)); v != nil {
			t.Errorf("the first row, all done, is still there (%d bytes)", len(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A row of one key as older builds wrote: one entry, slot 0.
	var key []byte
	s.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(schema.Records).Cursor().First()
		key = slices.Clone(k)
		return nil
	})
	err = s.do(func(tx *bolt.Tx) error {
		return tx.Bucket(schema.Outbox).Put(binary.BigEndian.AppendUint64(nil, 1<<40), key)
	})
	if err != nil {
		t.Fatal(err)
	}
	es, err = s.Outbox(ids[n-1], 10)
	if err != nil || len(es) != 1 || es[0].Seq != outboxEntryID(1<<40, 0) || es[0].Gone {
		t.Fatalf("an old row of one key: %d entries, %v", len(es), err)
	}
}
