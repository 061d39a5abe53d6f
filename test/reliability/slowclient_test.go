package reliability

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestReloadWithSlowReaders (issue 10, point 3): reloads never depend on
// clients, and no client holds a connection indefinitely. With slow readers
// connected (three at 5 KB/s, one at 1 MB a minute), a SIGUSR1 reload with a
// new token completes at once, the new token works and the old one gets 401
// within a second; the readers' connections live across the reload; and
// each of them is cut once it falls behind the minimum rate (32 KiB/s on
// average after the 30 s write timeout, the defaults).
func TestReloadWithSlowReaders(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t), APIBody: "token old-token\nmax_expensive 2"})
	s.start()
	fill(t, s, "old-token", 0, 30000)

	stop := make(chan struct{})
	defer close(stop)
	to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	// Public full ranges use the public slots, exports the token holders'
	// (two each here).
	readers := []*slowReader{
		startSlowReader(t, s, "public /api/0/to at 5 KB/s", fmt.Sprintf("/api/0/%d", to), "", 5000, stop),
		startSlowReader(t, s, "public /api/unique/0/to at 5 KB/s", fmt.Sprintf("/api/unique/0/%d", to), "", 5000, stop),
		startSlowReader(t, s, "export at 5 KB/s", "/api/v1/export?from=0", "old-token", 5000, stop),
		startSlowReader(t, s, "export at 1 MB a minute", "/api/v1/export?from=0", "old-token", 1<<20/60, stop),
	}
	for _, r := range readers {
		select {
		case <-r.first:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no data within 30 s", r.name)
		}
		if _, ended, err := r.state(); ended != 0 || r.status != 200 {
			t.Fatalf("%s: status %d, ended after %v (%v) before the reload", r.name, r.status, ended, err)
		}
	}
	time.Sleep(2 * time.Second)

	// The reload, with a new token.
	cfg := s.cfg
	cfg.APIBody = "token new-token\nmax_expensive 2"
	off := s.out.Len()
	s.writeConfig(cfg)
	start := time.Now()
	s.signal(syscall.SIGUSR1)
	if !s.waitLog(reloadDone, off, 15*time.Second) {
		t.Fatalf("the reload did not complete within 15 s with slow readers connected: %s", s.out.Bytes()[off:])
	}
	reloaded := time.Since(start)
	// The new token works and the old one is refused within a second.
	var switched time.Duration
	for {
		newCode, _, _ := apiGet(t, s, "/api/v1/reports?limit=1", "new-token")
		oldCode, _, _ := apiGet(t, s, "/api/v1/reports?limit=1", "old-token")
		if newCode == 200 && oldCode == 401 {
			switched = time.Since(start)
			break
		}
		if time.Since(start) > reloaded+time.Second {
			t.Fatalf("%v after the reload completed: new token %d, old token %d; want 200 and 401", time.Since(start)-reloaded, newCode, oldCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if reloaded > 3*time.Second {
		t.Errorf("the reload took %v with slow readers connected", reloaded)
	}
	// The readers were not cut by the reload.
	before := map[*slowReader]int64{}
	for _, r := range readers {
		got, ended, err := r.state()
		if ended != 0 {
			t.Errorf("%s: cut by the reload (%v after %d bytes)", r.name, err, got)
		}
		before[r] = got
	}
	time.Sleep(2 * time.Second)
	for _, r := range readers {
		if got, _, _ := r.state(); got <= before[r] {
			t.Errorf("%s: no data after the reload", r.name)
		}
	}
	t.Logf("reload with 4 slow readers: complete after %v, new token 200 and old token 401 after %v", reloaded.Round(time.Millisecond), switched.Round(time.Millisecond))

	// No reader keeps its connection: each falls behind the minimum rate and
	// the server ends its request (the kernel still delivers what it had
	// buffered, so a client sees the cut a little later).
	deadline := time.Now().Add(4 * time.Minute)
	for {
		inFlight := sumMetric(s.metricsText(), "coredns_statusengine_api_in_flight", "class")["all"]
		if inFlight == 0 {
			t.Logf("the server ended all 4 slow requests %v after they started", time.Since(readers[0].started).Round(time.Second))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v requests still served %v after the slow readers started", inFlight, time.Since(readers[0].started).Round(time.Second))
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, r := range readers {
		got, _, _ := r.state()
		r.fast.Store(true) // drain what the kernels buffered
		for {
			_, ended, err := r.state()
			if ended != 0 {
				if err == nil {
					t.Errorf("%s: the answer ended cleanly; a reader this slow must be cut", r.name)
				}
				t.Logf("%s: %d KiB read at the cut (%.1f KiB/s on average): %v", r.name, got>>10, float64(got)/1024/time.Since(r.started).Seconds(), err)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: still connected after %v", r.name, time.Since(r.started).Round(time.Second))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if code, _, _ := apiGet(t, s, "/api/v1/summary?from=0", ""); code != 200 {
		t.Errorf("summary after the slow readers: %d", code)
	}
}

// TestExportCutByReload (issue 10, point 6): an export cut by the server
// mid-stream (here a reload onto another database, which closes the store
// it reads) ends in an error the client sees, never in a clean end of a
// partial answer; and the reload does not wait for the export's client.
func TestExportCutByReload(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	s.start()
	fill(t, s, apiToken, 0, 30000)
	stop := make(chan struct{})
	defer close(stop)
	r := startSlowReader(t, s, "export", "/api/v1/export?from=0", apiToken, 5000, stop)
	select {
	case <-r.first:
	case <-time.After(30 * time.Second):
		t.Fatal("export: no data within 30 s")
	}

	cfg := s.cfg
	cfg.DB = filepath.Join(s.dir, "other.db")
	off := s.out.Len()
	s.writeConfig(cfg)
	start := time.Now()
	s.signal(syscall.SIGUSR1)
	if !s.waitLog(reloadDone, off, 15*time.Second) {
		t.Fatalf("the reload did not complete within 15 s with an export running: %s", s.out.Bytes()[off:])
	}
	reloaded := time.Since(start)
	if reloaded > 3*time.Second {
		t.Errorf("the reload took %v with an export running", reloaded)
	}
	// Read the rest as fast as it comes.
	r.fast.Store(true)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, ended, err := r.state()
		if ended != 0 {
			if err == nil {
				t.Errorf("the export ended cleanly after %d bytes although its store was closed mid-stream: the truncation is silent", got)
			} else {
				t.Logf("reload onto another db complete after %v; the export's client saw %q after %d KiB", reloaded.Round(time.Millisecond), err, got>>10)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the export still runs 2 min after its store was replaced (%d KiB read)", got>>10)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
