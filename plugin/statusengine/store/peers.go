package store

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// Live replication between the name servers of a zone pulls each peer's
// records after a cursor (the peer's record key), kept in bucket peers
// (schema.go), so a restart resumes where it stopped.

// PeerState is where the replication from one peer stands.
type PeerState struct {
	Cursor uint64    // the key of the last record taken from the peer; 0: none
	Synced time.Time // when a pull last reached the peer's newest record
	// Imports is the sequence number of the last entry taken from the
	// peer's list of imports (ImportedAfter); 0: none. It is kept under
	// the peer's URL and a NUL, so that the URL's own value keeps the
	// layout older versions read.
	Imports uint64
}

// Peer returns the replication state of peer.
func (s *Store) Peer(peer string) (PeerState, error) {
	var st PeerState
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(schema.Peers).Get([]byte(peer)); len(v) == 16 {
			st.Cursor = binary.BigEndian.Uint64(v)
			if t := int64(binary.BigEndian.Uint64(v[8:])); t > 0 {
				st.Synced = time.Unix(t, 0)
			}
		}
		if v := tx.Bucket(schema.Peers).Get(schema.ImportsCursorKey(peer)); len(v) == 8 {
			st.Imports = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return st, err
}

// SetPeer records the replication state of peer. Call it after the records
// up to the cursor are stored: a crash in between pulls them again, and the
// store's de-duplication makes that harmless.
func (s *Store) SetPeer(peer string, st PeerState) error {
	v := binary.BigEndian.AppendUint64(nil, st.Cursor)
	var t int64
	if !st.Synced.IsZero() {
		t = st.Synced.Unix()
	}
	v = binary.BigEndian.AppendUint64(v, uint64(t))
	return s.do(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Peers)
		if st.Imports != 0 {
			if err := b.Put(schema.ImportsCursorKey(peer), binary.BigEndian.AppendUint64(nil, st.Imports)); err != nil {
				return err
			}
		}
		return b.Put([]byte(peer), v)
	})
}
