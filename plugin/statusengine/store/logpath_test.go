package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statusengine/statusengine/plugin/statusengine/store/wal"
)

// events collects a store's OnEvent and OnWarning lines.
type events struct {
	mu             sync.Mutex
	info, warnings []string
}

func (e *events) options() Options {
	return Options{
		OnEvent:   func(m string) { e.mu.Lock(); e.info = append(e.info, m); e.mu.Unlock() },
		OnWarning: func(m string) { e.mu.Lock(); e.warnings = append(e.warnings, m); e.mu.Unlock() },
	}
}

func (e *events) warned() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.warnings...)
}

// openBounded opens path, failing the test if Open takes 10 s (a FIFO would
// make it wait for a writer forever).
func openBounded(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	opened := make(chan *Store, 1)
	go func() {
		s, err := Open(path, opts)
		if err != nil {
			t.Error(err)
		}
		opened <- s
	}()
	select {
	case s := <-opened:
		if s == nil {
			t.FailNow()
		}
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("Open still waits on the log after 10 s")
		return nil
	}
}

// TestLogRefused: a log path that holds what the store must not write. A
// symbolic link to the database had the log written at offset 0 of the
// database (every report lost); a link to any other file overwrote it; a
// FIFO would make Open wait, a device read without end. Each is refused in
// one warning naming it and why; the store opens, answers after each
// commit and stores every report; the file the path names is not written
// (byte for byte); check names the log.
func TestLogRefused(t *testing.T) {
	const otherText = "an operator's file: never to be written by statusengine\n"
	tests := []struct {
		name string
		make func(t *testing.T, db, lp, other string)
		why  string // in the warning
	}{
		{"fifo", func(t *testing.T, db, lp, other string) { must(t, unix.Mkfifo(lp, 0o600)) }, "not a regular file"},
		{"directory", func(t *testing.T, db, lp, other string) { must(t, os.Mkdir(lp, 0o700)) }, "not a regular file"},
		{"device", func(t *testing.T, db, lp, other string) {
			if err := unix.Mknod(lp, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 5))); err != nil { // /dev/zero
				t.Skipf("mknod needs root: %v", err)
			}
		}, "not a regular file"},
		{"symlink to a device", func(t *testing.T, db, lp, other string) { must(t, os.Symlink("/dev/zero", lp)) }, "symbolic link"},
		{"symlink to the database", func(t *testing.T, db, lp, other string) { must(t, os.Symlink(filepath.Base(db), lp)) }, "symbolic link"},
		{"symlink to another file", func(t *testing.T, db, lp, other string) { must(t, os.Symlink(other, lp)) }, "symbolic link"},
		{"dangling symlink", func(t *testing.T, db, lp, other string) { must(t, os.Symlink(other+".none", lp)) }, "symbolic link"},
		{"hard link to the database", func(t *testing.T, db, lp, other string) { must(t, os.Link(db, lp)) }, "the database file itself"},
		{"hard link to another file", func(t *testing.T, db, lp, other string) { must(t, os.Link(other, lp)) }, "hard link"},
		{"a file that is no log", func(t *testing.T, db, lp, other string) { must(t, os.WriteFile(lp, []byte(otherText), 0o600)) }, "does not start with a log frame"},
		{"a copy of the database", func(t *testing.T, db, lp, other string) {
			b, err := os.ReadFile(db)
			must(t, err)
			must(t, os.WriteFile(lp, b, 0o600))
		}, "does not start with a log frame"},
		{"writable by others", func(t *testing.T, db, lp, other string) {
			must(t, os.WriteFile(lp, nil, 0o600))
			must(t, os.Chmod(lp, 0o666))
		}, "others may write it"},
		{"another owner", func(t *testing.T, db, lp, other string) {
			must(t, os.WriteFile(lp, nil, 0o600))
			if err := os.Chown(lp, 12345, 12345); err != nil {
				t.Skipf("chown needs root: %v", err)
			}
		}, "owned by uid 12345"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "se.db")
			other := filepath.Join(dir, "other.txt")
			must(t, os.WriteFile(other, []byte(otherText), 0o600))
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			recs := logRecords(t, 7, time.Now().Add(-time.Minute))
			submitAll(t, s, recs[:3])
			s.Close()
			tc.make(t, path, wal.LogPath(path), other)

			var ev events
			s = openBounded(t, path, ev.options())
			submitAll(t, s, recs[3:])
			if n := s.Count(); n != 7 {
				t.Errorf("count %d, want 7", n)
			}
			if s.w.log != nil {
				t.Error("the store writes the log")
			}
			line := strings.Join(ev.warned(), "\n")
			if len(ev.warned()) != 1 || !strings.Contains(line, "refused") || !strings.Contains(line, tc.why) ||
				!strings.Contains(line, wal.LogPath(path)) {
				t.Errorf("warnings %q: want one naming the log, refused, %q", line, tc.why)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(other); string(b) != otherText {
				t.Errorf("the other file was written: %q", b)
			}
			r, err := Check(path) // of the closed file, as an operator runs it
			if err != nil {
				t.Fatal(err)
			}
			if r.Records != 7 || r.OK() || !strings.Contains(strings.Join(r.Problems, "\n"), "refused") {
				t.Errorf("check: %+v, want 7 records and the log named", r)
			}
			if _, err := os.Lstat(wal.LogPath(path)); err != nil {
				t.Errorf("the refused log was removed: %v", err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLogNotOursStoredReadOnly: a log the store refuses to write (not ours:
// another owner, writable by others, a second name) that holds answered
// reports the database lacks. Before, one INFO line said the log could not
// be opened and the reports were missing until the file was fixed. Now a
// warning names the count, the frames are read read-only and stored, the
// log is not written, and a second open stores nothing twice.
func TestLogNotOursStoredReadOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, lp string)
	}{
		{"writable by others", func(t *testing.T, lp string) { must(t, os.Chmod(lp, 0o666)) }},
		{"another owner", func(t *testing.T, lp string) {
			if err := os.Chown(lp, 12345, 12345); err != nil {
				t.Skipf("chown needs root: %v", err)
			}
		}},
		{"a second name", func(t *testing.T, lp string) { must(t, os.Link(lp, lp+".keep")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "se.db")
			recs := logRecords(t, 17, time.Now().Add(-time.Minute))
			fileWithLog(t, path, recs[:5], recs[5:])
			tc.edit(t, wal.LogPath(path))
			before, err := os.ReadFile(wal.LogPath(path))
			must(t, err)

			var ev events
			s := openBounded(t, path, ev.options())
			if n := s.Count(); n != 17 {
				t.Errorf("count %d, want 17 (5 stored, 12 in the log)", n)
			}
			w := strings.Join(ev.warned(), "\n")
			if len(ev.warned()) != 1 || !strings.Contains(w, "held 12 answered reports") || !strings.Contains(w, "read read-only") {
				t.Errorf("warnings %q: want one naming the 12 reports", w)
			}
			submitAll(t, s, logRecords(t, 20, time.Now().Add(-time.Minute))[17:])
			must(t, s.Close())
			if after, _ := os.ReadFile(wal.LogPath(path)); !bytes.Equal(before, after) {
				t.Error("the log was written")
			}
			var ev2 events
			s = openBounded(t, path, ev2.options())
			defer s.Close()
			if n, listed := s.Count(), len(all(t, s)); n != 20 || listed != 20 {
				t.Errorf("after a second open: count %d, %d listed, want 20", n, listed)
			}
			if w := strings.Join(ev2.warned(), "\n"); strings.Contains(w, "answered reports") {
				t.Errorf("second open: %q, want no reports the database lacks", w)
			}
		})
	}
}

// TestLogReplayInChunks: a large log is applied in transactions of at most
// wal.ReplayChunk frames, meta "wal" following each: all of it is stored once,
// and a crash between two transactions (here a panic after the third)
// loses nothing and stores nothing twice at the next open.
func TestLogReplayInChunks(t *testing.T) {
	defer func(n int) { wal.ReplayChunk = n }(wal.ReplayChunk)
	wal.ReplayChunk = 100
	recs := logRecords(t, 1050, time.Now().Add(-time.Hour))

	path := filepath.Join(t.TempDir(), "se.db")
	writeLog(t, path, recs)
	var ev events
	s, err := Open(path, ev.options())
	must(t, err)
	if n, replays := s.Count(), s.w.log.Replays; n != 1050 || replays != 11 {
		t.Errorf("count %d in %d transactions, want 1050 in 11", n, replays)
	}
	if !strings.Contains(strings.Join(ev.info, "\n"), "1050 reports the database lacked, 1050 stored again (the rest were there), in 11 transactions") {
		t.Errorf("events %q", ev.info)
	}
	must(t, s.Close())

	path = filepath.Join(t.TempDir(), "se.db")
	writeLog(t, path, recs)
	chunks := 0
	testHookReplayed = func() {
		if chunks++; chunks == 3 {
			panic("test: the process stops after the third transaction")
		}
	}
	_, err = Open(path, Options{})
	testHookReplayed = nil
	if err == nil {
		t.Fatal("Open worked through the forced stop")
	}
	s, err = Open(path, Options{})
	must(t, err)
	defer s.Close()
	if n, listed, replays := s.Count(), len(all(t, s)), s.w.log.Replays; n != 1050 || listed != 1050 || replays != 8 {
		t.Errorf("after the stop: count %d, %d listed, %d transactions; want 1050, 1050 and 8", n, listed, replays)
	}
}
