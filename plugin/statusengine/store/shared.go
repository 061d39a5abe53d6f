package store

import (
	"errors"
	"os"
	"sync"
)

// A store is shared by the overlapping plugin instances of a Corefile reload:
// bbolt locks its file, so a second Open of the same path would wait for a lock
// this process already holds.
var (
	sharedMu sync.Mutex
	shared   = map[string]*sharedStore{}
)

type sharedStore struct {
	*Store
	refs int
}

// Acquire returns the open store for path, opening it on first use. Every
// Acquire needs one Release.
func Acquire(path string, opts Options) (*Store, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if s := lookup(path); s != nil {
		s.refs++
		return s.Store, nil
	}
	st, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	shared[path] = &sharedStore{Store: st, refs: 1}
	return st, nil
}

// Release drops one reference; the last one closes the store.
func Release(st *Store) error {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	s, ok := shared[st.path]
	if !ok || s.Store != st {
		return errors.New("release of a store that is not shared")
	}
	s.refs--
	if s.refs > 0 {
		return nil
	}
	delete(shared, st.path)
	return st.Close()
}

// lookup also finds the store under another spelling of the same file.
func lookup(path string) *sharedStore {
	if s, ok := shared[path]; ok {
		return s
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil
	}
	for p, s := range shared {
		if other, err := os.Stat(p); err == nil && os.SameFile(info, other) {
			return s
		}
	}
	return nil
}
