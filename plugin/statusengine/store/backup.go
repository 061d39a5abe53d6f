package store

import (
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole database file to w and
// returns the bytes written. A read transaction first copies the file
// (bbolt's Tx.WriteTo) into an unlinked temporary file next to it, at disk
// speed; only then does the copy go to w, so a slow reader of a backup
// holds no transaction. When size is not nil it is told the length of the
// copy before the first byte is written (an HTTP Content-Length). The copy
// is a bbolt file that Open reads like the original.
func (s *Store) Backup(w io.Writer, size func(int64)) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(s.path), ".statusengine-backup-*")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	os.Remove(f.Name()) // gone with the last descriptor, even after a crash
	err = s.view(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if err != nil {
		return 0, err
	}
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if size != nil {
		size(n)
	}
	return io.Copy(w, f)
}
