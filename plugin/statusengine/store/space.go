package store

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// spaceRetry is how long a store that ran out of room (a full file system
// or max_size) fails new reports at once before it tries a commit again. A
// failing commit is slow (bbolt grows the file, writes, rolls back), and
// every report waiting on it would wait as long for its answer.
const spaceRetry = time.Second

// ErrNoSpace wraps the error of the last commit while Submit fails fast.
var ErrNoSpace = errors.New("store out of space, retrying")

// isSpaceError tells errors that free space, not a retry, will cure.
func isSpaceError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) ||
		errors.Is(err, berrors.ErrMaxSizeReached)
}

// noteSpace records the outcome of a commit: a space error starts a
// spaceRetry of fast failures, a success ends it.
func (s *Store) noteSpace(err error, now time.Time) {
	if err == nil {
		if s.noSpaceUntil.Load() != 0 {
			s.noSpaceUntil.Store(0)
		}
		return
	}
	if !isSpaceError(err) {
		return
	}
	e := fmt.Errorf("%w: %w", ErrNoSpace, err)
	s.noSpaceErr.Store(&e)
	s.noSpaceUntil.Store(now.Add(spaceRetry).UnixNano())
}

// noSpace returns the error to fail a report with at once, or nil.
func (s *Store) noSpace() error {
	until := s.noSpaceUntil.Load()
	if until == 0 || time.Now().UnixNano() >= until {
		return nil
	}
	if e := s.noSpaceErr.Load(); e != nil {
		return *e
	}
	return ErrNoSpace
}
