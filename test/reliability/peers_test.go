package reliability

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// readToken is what the mesh's servers pull from each other with: their
// api blocks give it as read_token.
const readToken = "peers-read-token"

// startMesh starts n servers of one zone, each pulling from the others
// every 300 ms with the read token, and returns them with their API
// addresses.
func startMesh(t *testing.T, n int) ([]*server, []string) {
	t.Helper()
	servers := make([]*server, n)
	apis := make([]string, n)
	for i := range servers {
		apis[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	for i := range servers {
		var urls []string
		for j := range servers {
			if j != i {
				urls = append(urls, "http://"+apis[j])
			}
		}
		servers[i] = newServer(t, config{
			API:     apis[i],
			APIBody: "token " + apiToken + "\nread_token " + readToken,
			Options: "limit off\npeers " + strings.Join(urls, " ") + " {\ntoken " + readToken + "\ninterval 300ms\n}",
		})
		servers[i].start()
	}
	return servers, apis
}

// waitRecords waits until every server holds want records and has caught
// up with each of its peers, or fails after 30 s.
func waitRecords(t *testing.T, servers []*server, want int) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		// Every report everywhere, and every server caught up with each
		// peer (a server may get a peer's reports from the third one
		// before its backoff lets it reach the peer, if it was stopped).
		done := true
		for _, s := range servers {
			text := s.metricsText()
			if metricTotal(text, "coredns_statusengine_records") != float64(want) {
				done = false
			}
			lag := sumMetric(text, "coredns_statusengine_peer_lag_seconds", "peer")
			for _, l := range lag {
				if l > 1.5 {
					done = false
				}
			}
			if len(lag) != len(servers)-1 {
				done = false
			}
		}
		if done {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			for i, s := range servers {
				t.Logf("server %d: %v records", i, metricTotal(s.metricsText(), "coredns_statusengine_records"))
			}
			t.Fatalf("not every server holds the %d reports after 30 s", want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestPeersMesh: three servers of one zone, each pulling from the other two
// (peers ... { token READ_TOKEN; interval 300ms }). Reports go to one server each, and
// some to all three; one server is stopped while the others take more, then
// started again. Within a few intervals every server holds every report
// exactly once, and the restarted one resumed from its cursors.
func TestPeersMesh(t *testing.T) {
	const n = 3
	servers, apis := startMesh(t, n)
	want := map[string]bool{}
	next := 0
	send := func(to []int, count int) {
		t.Helper()
		for range count {
			name := reportName(next, 1795800000)
			next++
			want[strings.ToLower(name)] = true
			for _, i := range to {
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				if r, err := servers[i].exchange(m, "", 2*time.Second); err != nil || len(r.Answer) != 1 {
					t.Fatalf("report to server %d: %v %v", i, r, err)
				}
			}
		}
	}
	send([]int{0}, 100)
	send([]int{1}, 100)
	send([]int{2}, 100)
	send([]int{0, 1, 2}, 50)
	servers[2].stop()
	send([]int{0}, 100)
	send([]int{1}, 100)
	time.Sleep(time.Second)
	servers[2].start()
	send([]int{2}, 50)

	waitRecords(t, servers, len(want))
	for i, s := range servers {
		text := s.metricsText()
		lag := sumMetric(text, "coredns_statusengine_peer_lag_seconds", "peer")
		errs := sumMetric(text, "coredns_statusengine_peer_errors_total", "peer")
		t.Logf("server %d: lag %v, errors %v", i, lag, errs)
		if len(lag) != n-1 {
			t.Errorf("server %d: lag of %d peers, want %d", i, len(lag), n-1)
		}
	}
	for i, s := range servers {
		s.stop()
		got := storedNames(t, s.cfg.DB)
		st, err := store.Open(s.cfg.DB, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		count := st.Count()
		for j := range servers {
			if j == i {
				continue
			}
			ps, _ := st.Peer("http://" + apis[j])
			if ps.Cursor == 0 || ps.Synced.IsZero() {
				t.Errorf("server %d: no cursor for peer %d: %+v", i, j, ps)
			}
		}
		st.Close()
		if int(count) != len(want) || len(missing(keys(want), got)) != 0 || len(got) != len(want) {
			t.Errorf("server %d: %d records (%d names), want each of the %d once", i, count, len(got), len(want))
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestPeersImportReplicates: 10 records dated yesterday imported into one
// server of a mesh (POST /api/v1/import) reach the two others, once each,
// although their keys lie below the cursors the others hold on it (they
// had pulled today's reports first): the others take them from its
// /api/v1/imports.
func TestPeersImportReplicates(t *testing.T) {
	servers, _ := startMesh(t, 3)
	want := map[string]bool{}
	for i, s := range servers {
		for k := range 30 {
			name := reportName(i*100+k, 1795800000)
			want[strings.ToLower(name)] = true
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			if r, err := s.exchange(m, "", 2*time.Second); err != nil || len(r.Answer) != 1 {
				t.Fatalf("report to server %d: %v %v", i, r, err)
			}
		}
	}
	waitRecords(t, servers, len(want))

	yesterday := time.Now().UTC().Add(-24 * time.Hour)
	var body bytes.Buffer
	for i := range 10 {
		at := yesterday.Add(time.Duration(i) * time.Minute)
		body.Write(fillLine(5000+i, at))
		want[strings.ToLower(codec.Encode(beacon(5000+i), at.Unix(), zone))] = true
	}
	req, _ := http.NewRequest("POST", "http://"+servers[0].cfg.API+"/api/v1/import", &body)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"imported":10`) {
		t.Fatalf("import: %s %s", resp.Status, b)
	}
	took := waitRecords(t, servers, len(want))
	t.Logf("the 10 imported records reached every server within %v", took.Round(100*time.Millisecond))
	for i, s := range servers {
		s.stop()
		got := storedNames(t, s.cfg.DB)
		st, err := store.Open(s.cfg.DB, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		count := st.Count()
		st.Close()
		if int(count) != len(want) || len(missing(keys(want), got)) != 0 || len(got) != len(want) {
			t.Errorf("server %d: %d records (%d names), want each of the %d once", i, count, len(got), len(want))
		}
	}
}

// TestPeersHostile: the real server pulls from a hostile peer on loopback.
// The peer serves 100 records of another zone claiming ModSecurity 99.9.9
// from 5 resolver /24s (what made "latest 99.9.9" public before), one
// record that does not decode and 3 good ones, and redirects its
// /api/v1/imports to a second server. The 3 good records are stored, the
// 101 others counted by reason, the public summary never says 99.9.9, the
// redirect's target gets no request (so never the token), and the peer
// saw only the read token.
func TestPeersHostile(t *testing.T) {
	var thief atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		thief.Add(1)
		io.WriteString(w, `{"reports":[],"cursor":"0","more":false}`)
	}))
	defer other.Close()
	now := time.Now().UTC()
	row := func(i int, zone, modsec, resolver string) string {
		at := now.Add(-time.Hour + time.Duration(i)*time.Millisecond)
		return fmt.Sprintf(`{"key":%q,"received":%q,"zone":%q,"resolver":%q,"beacon":"%s,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x","epoch":%d}`,
			record.KeyString(uint64(at.UnixNano())), at.Format(time.RFC3339Nano), zone, resolver, modsec, 9000+i, at.Unix())
	}
	var rows []string
	for i := range 100 {
		rows = append(rows, row(i, "evil.example.", "99.9.9", fmt.Sprintf("198.51.%d.%d", 100+i%5, 1+i)))
	}
	rows = append(rows, strings.Replace(row(100, zone, "2.9.7", "192.0.2.1"), `"received":"`, `"received":"garbage`, 1))
	for i := 101; i < 104; i++ {
		rows = append(rows, row(i, zone, "2.9.7", "192.0.2.1"))
	}
	var auths sync.Map
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths.Store(r.Header.Get("Authorization"), true)
		switch {
		case r.URL.Path == "/api/v1/imports":
			http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusFound)
		case r.URL.Query().Get("cursor") != "":
			io.WriteString(w, `{"reports":[],"next_cursor":null}`)
		default:
			io.WriteString(w, `{"reports":[`+strings.Join(rows, ",")+`],"next_cursor":null}`)
		}
	}))
	defer peer.Close()

	s := newServer(t, config{
		API:     fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		APIBody: "token " + apiToken + "\nread_token " + readToken,
		Options: "limit off\npeers " + peer.URL + " {\ntoken " + readToken + "\ninterval 300ms\n}",
	})
	s.start()
	defer s.stop()
	deadline := time.Now().Add(20 * time.Second)
	var text string
	for {
		text = s.metricsText()
		rej := sumMetric(text, "coredns_statusengine_peer_rejected_total", "reason")
		errs := metricTotal(text, "coredns_statusengine_peer_errors_total")
		if metricTotal(text, "coredns_statusengine_records") == 3 && rej["zone"] == 100 && rej["undecodable"] == 1 && errs >= 1 {
			t.Logf("stored 3; rejected %v; pull errors %v (the redirect)", rej, errs)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %v records, rejected %v, errors %v", metricTotal(text, "coredns_statusengine_records"), rej, errs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, token := range []string{"", apiToken} {
		code, _, body := apiGet(t, s, "/api/v1/summary?from=0", token)
		if code != 200 || strings.Contains(body, "99.9.9") || !strings.Contains(body, `"reports":3`) {
			t.Errorf("summary (token %q): %d %.300s", token, code, body)
		}
	}
	if n := thief.Load(); n != 0 {
		t.Errorf("the redirect's target got %d requests", n)
	}
	auths.Range(func(k, _ any) bool {
		if k != "Bearer "+readToken {
			t.Errorf("the peer got Authorization %q, want the read token", k)
		}
		return true
	})
}
