package api

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// errCut is the write error of a stream cut by a reload.
var errCut = errors.New("cut: the store was replaced by a reload")

// streams are the long answers reading a store (backups, exports). A reload
// that replaces the store cuts them at once, so that the old store closes
// without waiting for their clients (a backup holds a read transaction, which
// closing the store would wait for).
type streams struct {
	mu sync.Mutex
	m  map[*store.Store]map[*progressWriter]struct{}
}

// track registers w as a stream reading st until done is called. When st is
// no longer the API's store, w is cut at once.
func (s *Server) track(st *store.Store, w http.ResponseWriter) (done func()) {
	pw, ok := w.(*progressWriter)
	if !ok {
		return func() {}
	}
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	if s.state.Load().store != st {
		pw.cut()
		return func() {}
	}
	if s.streams.m == nil {
		s.streams.m = map[*store.Store]map[*progressWriter]struct{}{}
	}
	if s.streams.m[st] == nil {
		s.streams.m[st] = map[*progressWriter]struct{}{}
	}
	s.streams.m[st][pw] = struct{}{}
	return func() {
		s.streams.mu.Lock()
		defer s.streams.mu.Unlock()
		delete(s.streams.m[st], pw)
		if len(s.streams.m[st]) == 0 {
			delete(s.streams.m, st)
		}
	}
}

// cutStreams cuts every stream reading st; Configure calls it after the
// state no longer names st.
func (s *Server) cutStreams(st *store.Store) {
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	for pw := range s.streams.m[st] {
		pw.cut()
	}
	delete(s.streams.m, st)
}

// cut makes the writer fail from now on, a write blocked on the client
// included.
func (p *progressWriter) cut() {
	p.cutAt.Store(true)
	p.rc.SetWriteDeadline(time.Now())
}
