package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"

	berrors "go.etcd.io/bbolt/errors"
)

// lockWait is how long the tool waits for bbolt's file lock: a running
// server holds it for as long as it runs.
const lockWait = time.Second

// openDB opens the database file directly. mustExist refuses to create one
// (export, backup: a typo must not make an empty database).
func openDB(path string, mustExist bool) (*store.Store, error) {
	if path == "" {
		return nil, errors.New("--db is required")
	}
	if mustExist {
		if _, err := os.Stat(path); err != nil {
			return nil, err
		}
	}
	st, err := store.Open(path, store.Options{OpenTimeout: lockWait})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: database is in use by a running server: use the API backup endpoint or stop the server", path)
	}
	return st, err
}

// contextWithSignals is cancelled by SIGINT or SIGTERM.
func contextWithSignals() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return ctx
}
