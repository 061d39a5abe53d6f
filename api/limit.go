package api

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Retry-After of the 503 answers, in seconds: an expensive request holds
// its slot longer than a cheap one.
const (
	retryAfterBusy      = 2
	retryAfterExpensive = 5
)

// semaphore bounds the requests of one kind served at once.
type semaphore struct{ slots chan struct{} }

func newSemaphore(n int) *semaphore { return &semaphore{slots: make(chan struct{}, n)} }

func (s *semaphore) size() int { return cap(s.slots) }

// acquire takes a slot, waiting up to wait; false when none came free.
func (s *semaphore) acquire(ctx context.Context, wait time.Duration) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (s *semaphore) release() { <-s.slots }

// busy answers 503 with Retry-After and a JSON message.
func busy(w http.ResponseWriter, retryAfter int, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeError(w, http.StatusServiceUnavailable, msg)
}

// expensive runs h under the limit of expensive requests when costly(r)
// says r is one (nil: always). Requests with the token, when a token is set,
// have their own slots.
func (s *Server) expensive(h http.HandlerFunc, costly func(*http.Request) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if costly != nil && !costly(r) {
			h(w, r)
			return
		}
		st := s.stateOf(r)
		sem, class := st.public, "public"
		if st.cfg.Token != "" && s.private(r) {
			sem, class = st.private, "token"
		}
		if !sem.acquire(r.Context(), st.cfg.Limits.QueueWait) {
			rejected.WithLabelValues("expensive").Inc()
			busy(w, retryAfterExpensive, "busy: "+strconv.Itoa(sem.size())+
				" expensive requests (full ranges, filtered reports, export, backup, import) are running; retry later")
			return
		}
		inFlight.WithLabelValues(class).Inc()
		defer func() {
			inFlight.WithLabelValues(class).Dec()
			sem.release()
		}()
		h(w, r)
	}
}
