package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
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
	if n, err := s.OutboxLen(); n != 0 || err != nil {
		t.Fatalf("before EnableOutbox: %d entries, %v; want 0", n, err)
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
	path := s.path
	s.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	if n, _ := s.OutboxLen(); n != 1 {
		t.Errorf("after OutboxDone of one: %d entries, want 1", n)
	}
	// Its identity is the store's de-duplication key: the same for the
	// same start, whatever the receive time; another epoch, another id.
	r1, r2 := newRecord(t, b(1), 1795549302, now), newRecord(t, b(1), 1795549302, now.Add(time.Hour))
	if s.DedupID(r1) != s.DedupID(r2) || s.DedupID(r1) == s.DedupID(newRecord(t, b(1), 1795549303, now)) {
		t.Errorf("DedupID: %s, %s for the same start", s.DedupID(r1), s.DedupID(r2))
	}
}
