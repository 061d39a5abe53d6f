package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusengine/statusengine/internal/natstest"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// The jetstream property against real nats-server processes (Debian's,
// started by internal/natstest on loopback ports with stores of their own,
// killed by pid): each test runs statusengines that publish to and consume
// one stream, breaks something, and then checks that every server holds
// every report exactly once (the records of each file, read after the
// server stopped), that DNS answered every report within 2 s throughout,
// and that goroutines and memory stayed bounded.

// streamInfo reads the stream's configuration and state from the NATS
// server at url.
func streamInfo(t *testing.T, url, name string) *jetstream.StreamInfo {
	t.Helper()
	js := natstest.Admin(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo()
}

// fleetServer is a statusengine publishing as name to the NATS servers at
// urls; more is added to its jetstream block.
func fleetServer(t *testing.T, name string, urls []string, more string) *server {
	t.Helper()
	return newServer(t, config{
		APIBody: "token " + apiToken,
		Options: "limit off\njetstream " + strings.Join(urls, " ") + " {\nname " + name + "\n" + more + "\n}",
	})
}

// reportSet is the lower-case query names of installations [first,
// first+n) as sendReports sends them.
func reportSet(want map[string]bool, first, n int) {
	for i := range n {
		want[strings.ToLower(reportName(first+i, 1795700000))] = true
	}
}

// waitFleet waits up to d until every server holds want records and has
// nothing left in its outbox, and returns how long it took.
func waitFleet(t *testing.T, servers []*server, want int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		done := true
		for _, s := range servers {
			text := s.metricsText()
			if metricTotal(text, "coredns_statusengine_records") != float64(want) ||
				metricTotal(text, "coredns_statusengine_jetstream_outbox") != 0 {
				done = false
			}
		}
		if done {
			return time.Since(start)
		}
		if time.Since(start) > d {
			for i, s := range servers {
				text := s.metricsText()
				t.Logf("server %d: %v records, outbox %v, pending %v, publish errors %v", i,
					metricTotal(text, "coredns_statusengine_records"), metricTotal(text, "coredns_statusengine_jetstream_outbox"),
					metricTotal(text, "coredns_statusengine_jetstream_consumer_pending"),
					metricTotal(text, "coredns_statusengine_jetstream_publish_errors_total"))
			}
			t.Fatalf("not every server holds the %d reports after %v", want, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkBounded fails when the server's goroutines or resident memory grew
// past what a quiet server with its NATS client holds.
func checkBounded(t *testing.T, i int, s *server) {
	t.Helper()
	text := s.metricsText()
	g, rss := metricTotal(text, "go_goroutines"), metricTotal(text, "process_resident_memory_bytes")
	t.Logf("server %d: %v goroutines, %.0f MB resident", i, g, rss/1e6)
	if g > 200 || rss > 300e6 {
		t.Errorf("server %d: %v goroutines, %.0f MB resident: not bounded", i, g, rss/1e6)
	}
}

// checkFleetFiles stops every server and checks that each file holds each
// report of want exactly once, and no other.
func checkFleetFiles(t *testing.T, servers []*server, want map[string]bool) {
	t.Helper()
	for i, s := range servers {
		checkBounded(t, i, s)
		s.stop()
		got := storedNames(t, s.cfg.DB)
		count := countRecords(t, s.cfg.DB)
		lost := len(missing(keys(want), got))
		if lost > 0 || count != len(want) || len(got) != len(want) {
			t.Errorf("server %d: %d records (%d names, %d missing), want each of the %d once", i, count, len(got), lost, len(want))
		}
	}
}

// countRecords is the number of records in the file at path.
func countRecords(t *testing.T, path string) int {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return int(st.Count())
}

// flow sends reports of installations [first, first+n) to s, one every
// gap, in the background; the wait function returns once all are
// answered. An unanswered report fails the test.
func flow(t *testing.T, s *server, first, n int, gap time.Duration) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			m := new(dns.Msg)
			m.SetQuestion(reportName(first+i, 1795700000), dns.TypeA)
			if r, err := s.exchange(m, "", 2*time.Second); err != nil || len(r.Answer) != 1 {
				t.Errorf("report %d not answered within 2 s: %v %v", first+i, r, err)
				return
			}
			time.Sleep(gap)
		}
	}()
	return wg.Wait
}

// TestJetStreamFleet: two statusengines and one nats-server. Reports go to
// one server each, and some to both: every server holds each once, the
// stream holds each once (the copies both servers published share a
// message id), and the outboxes empty.
func TestJetStreamFleet(t *testing.T) {
	ns := natstest.Start(t)
	a := fleetServer(t, "ns1", []string{ns.URL()}, "")
	b := fleetServer(t, "ns2", []string{ns.URL()}, "")
	a.start()
	b.start()
	want := map[string]bool{}
	a.sendReports(t, 0, 100)
	b.sendReports(t, 1000, 100)
	a.sendReports(t, 2000, 20)
	b.sendReports(t, 2000, 20)
	reportSet(want, 0, 100)
	reportSet(want, 1000, 100)
	reportSet(want, 2000, 20)
	took := waitFleet(t, []*server{a, b}, len(want), 30*time.Second)
	t.Logf("every server held the %d reports %v after the last was sent", len(want), took)
	if info := streamInfo(t, ns.URL(), "STATUSENGINE"); info.State.Msgs != uint64(len(want)) {
		t.Errorf("the stream holds %d messages, want the %d reports once each", info.State.Msgs, len(want))
	}
	for i, s := range []*server{a, b} {
		rej := sumMetric(s.metricsText(), "coredns_statusengine_peer_rejected_total", "reason")
		for r, v := range rej {
			if v != 0 {
				t.Errorf("server %d: %v rejected for %s", i, v, r)
			}
		}
	}
	checkFleetFiles(t, []*server{a, b}, want)
}

// TestJetStreamNATSDownAtStart: the statusengines start while no NATS
// server runs: they start, answer and store, keep the reports in their
// outboxes, and publish them once NATS runs.
func TestJetStreamNATSDownAtStart(t *testing.T) {
	ns := natstest.New(t) // not started
	a := fleetServer(t, "ns1", []string{ns.URL()}, "")
	b := fleetServer(t, "ns2", []string{ns.URL()}, "")
	a.start()
	b.start()
	want := map[string]bool{}
	a.sendReports(t, 0, 50)
	b.sendReports(t, 1000, 50)
	reportSet(want, 0, 50)
	reportSet(want, 1000, 50)
	time.Sleep(time.Second)
	for i, s := range []*server{a, b} {
		text := s.metricsText()
		if o, r := metricTotal(text, "coredns_statusengine_jetstream_outbox"), metricTotal(text, "coredns_statusengine_records"); o != 50 || r != 50 {
			t.Errorf("server %d with NATS down: %v in the outbox, %v records; want 50, 50", i, o, r)
		}
		if e := metricTotal(text, "coredns_statusengine_jetstream_publish_errors_total"); e == 0 {
			t.Errorf("server %d: no publish error counted while NATS is down", i)
		}
	}
	ns.Start()
	took := waitFleet(t, []*server{a, b}, len(want), 30*time.Second)
	t.Logf("NATS started: every server held the %d reports within %v", len(want), took)
	checkFleetFiles(t, []*server{a, b}, want)
}

// TestJetStreamNATSRestart: reports flow to both servers while the NATS
// server is killed (SIGKILL) and, 2 s later, started again on its store:
// every report answered, then held by both, once.
func TestJetStreamNATSRestart(t *testing.T) {
	ns := natstest.Start(t)
	a := fleetServer(t, "ns1", []string{ns.URL()}, "")
	b := fleetServer(t, "ns2", []string{ns.URL()}, "")
	a.start()
	b.start()
	want := map[string]bool{}
	waitA := flow(t, a, 0, 400, 10*time.Millisecond)
	waitB := flow(t, b, 1000, 400, 10*time.Millisecond)
	reportSet(want, 0, 400)
	reportSet(want, 1000, 400)
	time.Sleep(time.Second)
	ns.Kill()
	time.Sleep(2 * time.Second)
	ns.Start()
	waitA()
	waitB()
	took := waitFleet(t, []*server{a, b}, len(want), 30*time.Second)
	t.Logf("NATS killed and restarted: every server held the %d reports %v after the last", len(want), took)
	checkFleetFiles(t, []*server{a, b}, want)
}

// clusterFlow starts a 3-node JetStream cluster and three statusengines
// on it (an R3 stream), and a flow of perServer reports to each, every
// gap; server i's reports are numbered from i*base. It returns the
// reports wanted on every server and a wait for each flow.
func clusterFlow(t *testing.T, base, perServer int, gap time.Duration) ([]*natstest.Server, []*server, map[string]bool, []func()) {
	nodes := natstest.StartCluster(t, 3)
	urls := []string{nodes[0].URL(), nodes[1].URL(), nodes[2].URL()}
	var servers []*server
	for i := range 3 {
		s := fleetServer(t, fmt.Sprintf("ns%d", i+1), urls, "replicas 3")
		s.start()
		servers = append(servers, s)
	}
	want := map[string]bool{}
	var waits []func()
	for i, s := range servers {
		waits = append(waits, flow(t, s, i*base, perServer, gap))
		reportSet(want, i*base, perServer)
	}
	return nodes, servers, want, waits
}

// TestJetStreamClusterNodeKilled: three statusengines, each given the
// three nodes of a JetStream cluster, an R3 stream; one node is killed
// while reports flow to all three servers. The two others keep quorum:
// every report answered, then held by all three, once.
func TestJetStreamClusterNodeKilled(t *testing.T) {
	nodes, servers, want, waits := clusterFlow(t, 1000, 300, 10*time.Millisecond)
	time.Sleep(time.Second)
	nodes[1].Kill()
	for _, w := range waits {
		w()
	}
	took := waitFleet(t, servers, len(want), 60*time.Second)
	t.Logf("one node of three killed: every server held the %d reports %v after the last", len(want), took)
	if info := streamInfo(t, nodes[0].URL(), "STATUSENGINE"); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("the stream: %d replicas, cluster %+v; want R3", info.Config.Replicas, info.Cluster)
	}
	checkFleetFiles(t, servers, want)
}

// TestJetStreamKill9: a statusengine is killed with SIGKILL while reports
// pour in and its publisher empties its outbox, then started again on its
// file: every report it answered (answer_deadline off: answered means
// durable) reaches the other server, and both hold the same reports, once
// each. The outbox left in the killed server's file is logged.
func TestJetStreamKill9(t *testing.T) {
	ns := natstest.Start(t)
	a := fleetServer(t, "ns1", []string{ns.URL()}, "")
	a.cfg.Options = "answer_deadline off\n" + a.cfg.Options
	a.writeConfig(a.cfg)
	b := fleetServer(t, "ns2", []string{ns.URL()}, "")
	a.start()
	b.start()
	load := startLoad(a.dnsAddr(), 4, 1000000)
	time.Sleep(1500 * time.Millisecond)
	a.kill()
	answered := map[string]bool{}
	for _, n := range load.finish() {
		answered[n] = true
	}
	st, err := store.Open(a.cfg.DB, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	left := st.OutboxLen()
	st.Close()
	t.Logf("killed after %d answered reports, %d entries in the outbox of the file (waiting, or kept after their acknowledgement)", len(answered), left)
	a.start()
	a.sendReports(t, 100000, 20)
	reportSet(answered, 100000, 20)
	// The reports sent while a died may have been stored unanswered: the
	// two files must agree, and hold every answered one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ra := metricTotal(a.metricsText(), "coredns_statusengine_records")
		rb := metricTotal(b.metricsText(), "coredns_statusengine_records")
		oa := metricTotal(a.metricsText(), "coredns_statusengine_jetstream_outbox")
		if ra == rb && ra >= float64(len(answered)) && oa == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %v and %v records, outbox %v; %d answered", ra, rb, oa, len(answered))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, s := range []*server{a, b} {
		checkBounded(t, i, s)
	}
	a.stop()
	b.stop()
	ga, gb := storedNames(t, a.cfg.DB), storedNames(t, b.cfg.DB)
	na, nb := countRecords(t, a.cfg.DB), countRecords(t, b.cfg.DB)
	if lost := missing(keys(answered), ga); len(lost) > 0 {
		t.Errorf("the killed server lost %d answered reports", len(lost))
	}
	if lost := missing(keys(ga), gb); len(lost) > 0 || na != nb || na != len(ga) || nb != len(gb) {
		t.Errorf("the files differ: %d records (%d names) and %d (%d names), %d of the first missing from the second", na, len(ga), nb, len(gb), len(lost))
	}
}

// TestJetStreamHostile: a publisher on the stream's subjects that is not a
// statusengine, on a stream the operator made beforehand without a message
// size limit (which the server must leave as it is). It sends 10 lines
// that are not records, a line of 1,000,000 bytes, 100 records of another
// zone, 100 records of the zone claiming ModSecurity 99.9.9 from one
// resolver /24, 5 records received 50 years ahead (they read as records,
// the store refuses them), and 3 good records. The server drops and counts
// the 116 (undecodable 10, size 1, zone 100, invalid 5), stores the
// others, keeps consuming
// (reports it answers later reach the stream and come back), and its
// public summary never says 99.9.9: the public floor counts resolver
// networks, and one network is not enough.
func TestJetStreamHostile(t *testing.T) {
	ns := natstest.Start(t)
	js := natstest.Admin(t, ns.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STATUSENGINE", Subjects: []string{"statusengine.>"}}); err != nil {
		t.Fatal(err)
	}
	a := fleetServer(t, "ns1", []string{ns.URL()}, "")
	a.start()

	now := time.Now().UTC()
	rowAt := func(at time.Time, i int, zone, modsec, resolver string) []byte {
		return fmt.Appendf(nil, `{"key":%q,"received":%q,"zone":%q,"resolver":%q,"beacon":"%s,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x","epoch":%d}`,
			record.KeyString(uint64(at.UnixNano())), at.Format(time.RFC3339Nano), zone, resolver, modsec, 9000+i, at.Unix())
	}
	row := func(i int, zone, modsec, resolver string) []byte {
		return rowAt(now.Add(-time.Hour+time.Duration(i)*time.Millisecond), i, zone, modsec, resolver)
	}
	var msgs [][]byte
	for i := range 10 {
		msgs = append(msgs, []byte(fmt.Sprintf(`{"key":"zz%d","beacon":`, i)))
	}
	msgs = append(msgs, append(append([]byte(`{"beacon":"`), bytes.Repeat([]byte("A"), 1_000_000-13)...), '"', '}'))
	for i := range 100 {
		msgs = append(msgs, row(i, "evil.example.", "99.9.9", fmt.Sprintf("198.51.%d.%d", 100+i%5, 1+i)))
	}
	for i := range 100 {
		msgs = append(msgs, row(100+i, zone, "99.9.9", fmt.Sprintf("198.51.100.%d", 1+i)))
	}
	for i := range 5 {
		// Lines that read as records the store refuses (received 50
		// years ahead): counted invalid, and the consumer goes on.
		msgs = append(msgs, rowAt(now.AddDate(50, 0, i), 300+i, zone, "2.9.7", "192.0.2.1"))
	}
	for i := range 3 {
		msgs = append(msgs, row(200+i, zone, "2.9.7", "192.0.2.1"))
	}
	for i, m := range msgs {
		if _, err := js.Publish(ctx, "statusengine.evil", m); err != nil {
			t.Fatalf("hostile message %d (%d bytes): %v", i, len(m), err)
		}
	}
	a.sendReports(t, 0, 10)
	deadline := time.Now().Add(30 * time.Second)
	for {
		text := a.metricsText()
		rej := sumMetric(text, "coredns_statusengine_peer_rejected_total", "reason")
		recs := metricTotal(text, "coredns_statusengine_records")
		if rej["undecodable"] == 10 && rej["size"] == 1 && rej["zone"] == 100 && rej["invalid"] == 5 && recs == 113 {
			t.Logf("stored %v; rejected %v", recs, rej)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %v records, rejected %v", recs, rej)
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, _, body := apiGet(t, a, "/api/v1/summary?from=0", "")
	if code != 200 || strings.Contains(body, "99.9.9") {
		t.Errorf("public summary: %d %.300s", code, body)
	}
	// The records are stored: the token's summary, without the floor, shows them.
	if code, _, body := apiGet(t, a, "/api/v1/summary?from=0", apiToken); code != 200 || !strings.Contains(body, "99.9.9") {
		t.Errorf("summary with the token: %d %.300s", code, body)
	}
	info := streamInfo(t, ns.URL(), "STATUSENGINE")
	if info.Config.MaxMsgSize != -1 || info.Config.Replicas != 1 {
		t.Errorf("the operator's stream was changed: max_msg_size %d, replicas %d", info.Config.MaxMsgSize, info.Config.Replicas)
	}
	checkBounded(t, 0, a)
}

// TestJetStreamSlowConsumer: a third server whose consumer falls 3,000
// messages behind (it is stopped while the two others take 3,000 reports)
// resumes from its durable consumer's place when it runs again: it takes
// the backlog in bounded batches, answers DNS meanwhile, and ends holding
// every report once, as the others do.
func TestJetStreamSlowConsumer(t *testing.T) {
	ns := natstest.Start(t)
	var servers []*server
	for i := range 3 {
		s := fleetServer(t, fmt.Sprintf("ns%d", i+1), []string{ns.URL()}, "")
		s.start()
		servers = append(servers, s)
	}
	want := map[string]bool{}
	servers[2].sendReports(t, 0, 100)
	reportSet(want, 0, 100)
	waitFleet(t, servers, len(want), 30*time.Second)
	servers[2].stop()
	servers[0].sendReports(t, 1000, 1500)
	servers[1].sendReports(t, 3000, 1500)
	reportSet(want, 1000, 1500)
	reportSet(want, 3000, 1500)
	servers[2].start()
	var maxPending float64
	waitB := flow(t, servers[2], 5000, 100, 5*time.Millisecond) // answered while it catches up
	deadline := time.Now().Add(60 * time.Second)
	for metricTotal(servers[2].metricsText(), "coredns_statusengine_records") < float64(len(want)) && time.Now().Before(deadline) {
		maxPending = max(maxPending, metricTotal(servers[2].metricsText(), "coredns_statusengine_jetstream_consumer_pending"))
		time.Sleep(50 * time.Millisecond)
	}
	waitB()
	reportSet(want, 5000, 100)
	took := waitFleet(t, servers, len(want), 60*time.Second)
	t.Logf("the server 3,000 behind caught up (consumer pending at most %v when sampled); all held the %d reports %v later", maxPending, len(want), took)
	checkFleetFiles(t, servers, want)
}

// TestJetStreamLateJoiner: a server that joins the fleet later gets what
// the stream holds; what is older (here: the reports taken before the
// first server had jetstream, which it never published) it gets by an
// import from a peer's export, and the import costs the others only
// duplicates. Both end with every report once.
func TestJetStreamLateJoiner(t *testing.T) {
	ns := natstest.Start(t)
	a := newServer(t, config{APIBody: "token " + apiToken, Options: "limit off"})
	a.start()
	a.sendReports(t, 0, 30) // history from before the fleet
	a.stop()
	a.cfg.Options = "limit off\njetstream " + ns.URL() + " {\nname ns1\n}"
	a.writeConfig(a.cfg)
	a.start()
	a.sendReports(t, 1000, 20)
	b := fleetServer(t, "ns2", []string{ns.URL()}, "")
	b.start()
	want := map[string]bool{}
	reportSet(want, 1000, 20)
	deadline := time.Now().Add(30 * time.Second)
	for metricTotal(b.metricsText(), "coredns_statusengine_records") != 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the late joiner holds %v records of the stream's 20", metricTotal(b.metricsText(), "coredns_statusengine_records"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The older history: a's export, imported into b (what
	// `statusengine import --api B --token T "A/api/v1/export?from=0"` does).
	code, _, export := apiGet(t, a, "/api/v1/export?from=0", apiToken)
	if code != 200 || strings.Count(export, "\n") != 50 {
		t.Fatalf("export of a: %d, %d lines", code, strings.Count(export, "\n"))
	}
	req, _ := http.NewRequest("POST", "http://"+b.cfg.API+"/api/v1/import", strings.NewReader(export))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"imported":30`) {
		t.Fatalf("import into b: %s %s", resp.Status, body)
	}
	reportSet(want, 0, 30)
	took := waitFleet(t, []*server{a, b}, len(want), 30*time.Second)
	t.Logf("after the import, both held the %d reports within %v", len(want), took)
	checkFleetFiles(t, []*server{a, b}, want)
}

// TestJetStreamClusterKilled: every node of a 3-node cluster is killed
// (SIGKILL) at once while reports flow to three servers, and started again
// 2 s later. NATS servers that all die at once can lose the last messages
// they acknowledged (bench/fleet lost 32 so): the servers publish again
// what the stream acknowledged in the last 2 minutes after they reconnect,
// and a consumer the stream fell behind is made again from the stream's
// next message. Every report is then held by all three, once.
func TestJetStreamClusterKilled(t *testing.T) {
	nodes, servers, want, waits := clusterFlow(t, 10000, 800, 5*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	for _, n := range nodes {
		n.Kill()
	}
	time.Sleep(2 * time.Second)
	for _, n := range nodes {
		n.Start()
	}
	for _, w := range waits {
		w()
	}
	took := waitFleet(t, servers, len(want), 90*time.Second)
	t.Logf("every node killed and restarted: every server held the %d reports %v after the last", len(want), took)
	for i, s := range servers {
		if strings.Contains(s.out.String(), "lost their last messages") {
			t.Logf("server %d: its consumer was ahead of the stream after the restart, and made again", i)
		}
	}
	checkFleetFiles(t, servers, want)
}

// TestJetStreamReload: a server is reloaded (SIGUSR1) three times while
// reports flow to it: each reload stops the old feed and starts a new one
// on the shared store (no feed left behind: goroutines stay where they
// were), and every report reaches the other server once.
func TestJetStreamReload(t *testing.T) {
	ns := natstest.Start(t)
	a := fleetServer(t, "ns1", []string{ns.URL()}, "")
	b := fleetServer(t, "ns2", []string{ns.URL()}, "")
	a.start()
	b.start()
	before := metricTotal(a.metricsText(), "go_goroutines")
	want := map[string]bool{}
	wait := flow(t, a, 0, 600, 5*time.Millisecond)
	reportSet(want, 0, 600)
	for i := range 3 {
		time.Sleep(700 * time.Millisecond)
		cfg := a.cfg
		cfg.TTL = 30 + i
		off := a.out.Len()
		a.writeConfig(cfg)
		a.signal(syscall.SIGUSR1)
		if !a.waitLog(reloadDone, off, 15*time.Second) {
			t.Fatalf("reload %d: not complete within 15 s: %s", i+1, a.out.Bytes()[off:])
		}
	}
	wait()
	took := waitFleet(t, []*server{a, b}, len(want), 30*time.Second)
	after := metricTotal(a.metricsText(), "go_goroutines")
	t.Logf("3 reloads under 600 reports: both held them %v after the last; goroutines %v before, %v after", took, before, after)
	if after > before+10 {
		t.Errorf("goroutines %v after 3 reloads, %v before: a feed left running?", after, before)
	}
	checkFleetFiles(t, []*server{a, b}, want)
}
