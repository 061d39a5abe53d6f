package store

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// The byte forms of the file's keys and single values: meta values are 8
// bytes big-endian (schema.Meta), dictionary rows are keyed by their
// number, 4 bytes big-endian.

// getUint reads the 8-byte value of k in b; 0 when absent or malformed.
func getUint(b *bolt.Bucket, k []byte) uint64 {
	if v := b.Get(k); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// putUint writes v as the 8-byte value of k in b.
func putUint(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

// beUint64 reads a record key (8 bytes).
func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// numKey is a dictionary row's key: its number.
func numKey(n uint32) []byte { return binary.BigEndian.AppendUint32(make([]byte, 0, 4), n) }

// numOf is the number of a numKey.
func numOf(k []byte) uint32 { return binary.BigEndian.Uint32(k) }
