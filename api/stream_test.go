package api

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// TestReplacingStoreCutsStreams: a reload that points the API at another
// store cuts the backups and exports reading the old one at once, so that the
// old store closes without waiting for slow clients, and the clients see a
// truncated body, never a clean end.
func TestReplacingStoreCutsStreams(t *testing.T) {
	for _, path := range []string{"/api/v1/backup", "/api/v1/export?from=0"} {
		t.Run(path, func(t *testing.T) {
			old, err := store.Open(filepath.Join(t.TempDir(), "old.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			im := store.NewImporter(old, nil)
			base := time.Now().Add(-time.Hour)
			for i := range 20000 {
				rep, _ := codec.ParseBeacon("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75")
				rep.Epoch, rep.HasEpoch = 1795549302+int64(i), true
				im.Add(&record.Record{Received: base.Add(time.Duration(i) * time.Millisecond), Zone: "status.modsecurity.org.", Report: rep}, i)
			}
			if err := im.Flush(); err != nil {
				t.Fatal(err)
			}
			next, err := store.Open(filepath.Join(t.TempDir(), "new.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer next.Close()

			s := New()
			s.SetStore(old)
			hs := httptest.NewUnstartedServer(s)
			ln, err := Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs.Listener.Close()
			hs.Listener = ln
			hs.Start()
			defer hs.Close()
			client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
				Control: func(network, address string, c syscall.RawConn) error {
					return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
				},
			}).DialContext}}
			resp, err := client.Get(hs.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %v", resp.Status, err)
			}

			s.SetStore(next) // the reload
			closed := make(chan error, 1)
			start := time.Now()
			go func() { closed <- old.Close() }()
			select {
			case err := <-closed:
				t.Logf("old store closed %v after the swap (%v)", time.Since(start).Round(time.Millisecond), err)
			case <-time.After(10 * time.Second):
				t.Fatal("the old store did not close within 10 s of the swap: a stream still holds it")
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil {
				t.Errorf("the cut stream ended cleanly after %d more bytes (Content-Length %d): the truncation is silent", n, resp.ContentLength)
			} else {
				t.Logf("client saw %v after %d more bytes", err, n)
			}
		})
	}
}
