package statusengine

import (
	"errors"
	"sync"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// The store tells what happens inside it through the hooks of store.Options
// (a commit, a retention sweep, its file found damaged); the functions here
// turn that into metrics and log lines.

// fullStores remembers, per store path, when a commit last hit max_size. A
// store at its cap flaps: a big batch fails, the next small one fits in the
// pages it freed. So the store counts as full until commits have worked for
// fullHold, and the log says "reached" once per episode, at most once a
// minute. Only the store's writer goroutine calls observeCommit.
var fullStores sync.Map // path -> *fullState

// fullState is what fullStores holds for one store.
type fullState struct {
	full     bool
	lastFail time.Time
	logged   time.Time // of the last "reached" line
}

// How long a full store stays full, and how often it says so.
const (
	fullHold     = 10 * time.Second
	fullLogEvery = time.Minute
)

// observeCommit is told of each commit of a store, to the write-ahead log
// (c.Logged) or to the database file, and of its error: it updates the
// metrics and tracks whether the store is full.
func observeCommit(c store.CommitInfo) {
	logUnstored.WithLabelValues(c.Path).Set(float64(c.Unstored))
	if c.Logged {
		logDuration.Observe(c.Duration.Seconds())
		logBatch.Observe(float64(c.Batch))
		return
	}
	commitDuration.Observe(c.Duration.Seconds())
	commitBatch.Observe(float64(c.Batch))
	storedRecords.WithLabelValues(c.Path).Set(float64(c.Records))
	switch {
	case errors.Is(c.Err, berrors.ErrMaxSizeReached):
		v, _ := fullStores.LoadOrStore(c.Path, &fullState{})
		st := v.(*fullState)
		if !st.full && time.Since(st.logged) > fullLogEvery {
			log.Errorf("database %s reached max_size: reports are answered but no longer stored", c.Path)
			st.logged = time.Now()
		}
		st.full, st.lastFail = true, time.Now()
		storeFull.WithLabelValues(c.Path).Set(1)
	case c.Err == nil && c.Batch > 0:
		v, ok := fullStores.Load(c.Path)
		if !ok {
			storeFull.WithLabelValues(c.Path).Set(0)
			return
		}
		st := v.(*fullState)
		if st.full && time.Since(st.lastFail) > fullHold {
			log.Infof("database %s is below max_size again: storing resumed", c.Path)
			st.full = false
			storeFull.WithLabelValues(c.Path).Set(0)
		}
	}
}

// resetFull forgets a store's full state when a new configuration (maybe a
// new max_size) takes it over; the next commit tells again.
func resetFull(path string) {
	fullStores.Delete(path)
	storeFull.WithLabelValues(path).Set(0)
}

// observeDown is told when a running store finds its file damaged.
func observeDown(path string) func(error) {
	return func(err error) {
		log.Errorf("%v; reports are answered but no longer stored", err)
		storeUp.WithLabelValues(path).Set(0)
	}
}

// observeSweep is told how many reports a retention sweep of the store at
// path deleted, or why it failed.
func observeSweep(path string) func(int, error) {
	return func(n int, err error) {
		if err != nil {
			log.Errorf("retention sweep of %s: %v", path, err)
			return
		}
		retentionDeleted.WithLabelValues(path).Add(float64(n))
	}
}
