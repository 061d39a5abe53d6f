package fleet

import (
	"sync/atomic"
	"testing"
)

// TestNoteOutOfOrder: a batch that fails in part is published again, so
// its entries can be acknowledged after higher ones. Each is kept once,
// whatever the order; before, a seq below the last acknowledged one was
// passed over and stayed in the outbox for good (TestJetStreamNATSRestart
// saw 3 such entries after NATS was killed under flow).
func TestNoteOutOfOrder(t *testing.T) {
	p := &publisher{kept: &atomic.Int64{}}
	p.note([]uint64{101, 102})
	p.note([]uint64{1, 2, 101}) // the batch again: 1 and 2 failed the first time
	p.note([]uint64{102})       // a republish after a reconnection
	if got := p.kept.Load(); got != 4 || len(p.acked) != 4 {
		t.Fatalf("kept %d, acked %v; want 101, 102, 1, 2 once each", got, p.acked)
	}
	for i, want := range []uint64{101, 102, 1, 2} {
		if p.acked[i].seq != want {
			t.Errorf("acked[%d] = %d, want %d (in the order acknowledged)", i, p.acked[i].seq, want)
		}
	}
}
