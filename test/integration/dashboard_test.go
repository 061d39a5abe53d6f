package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/test"
	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// Operator files that name metrics: the Prometheus alert rules (and their
// unit tests) and the Grafana dashboard.
var metricFiles = []string{
	"../../dist/prometheus/statusengine-rules.yml",
	"../../dist/prometheus/statusengine-rules.test.yml",
	"../../dist/grafana/statusengine.json",
}

var reMetricName = regexp.MustCompile(`coredns_[a-z0-9_]+`)

// Every metric name the rules and the dashboard use is one a real server
// exports on /metrics: a renamed metric breaks this test, not the alerts.
func TestDashboardAndRulesMetrics(t *testing.T) {
	used := map[string][]string{} // name -> files
	for _, f := range metricFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range reMetricName.FindAllString(string(b), -1) {
			if base := filepath.Base(f); !slices.Contains(used[n], base) {
				used[n] = append(used[n], base)
			}
		}
	}
	if len(used) == 0 {
		t.Fatal("no metric names found in the rules and the dashboard")
	}

	// A server with the prometheus plugin, one report stored (the labelled
	// series exist once something was counted), a peer that is down (the
	// peer series exist once a pull was tried) and a NATS server that is
	// down (the jetstream series exist from the start).
	port, metricsAddr, peerPort, natsPort := freePort(t), "127.0.0.1:"+freePort(t), freePort(t), freePort(t)
	db := filepath.Join(t.TempDir(), "se.db")
	inst, err := test.CoreDNSServer(fmt.Sprintf(`status.modsecurity.org:%s {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.10
        db %s
        api off
        peers http://127.0.0.1:%s {
            interval 1s
        }
        jetstream nats://127.0.0.1:%s {
            name dashboard
        }
    }
    prometheus %s
}`, port, db, peerPort, natsPort, metricsAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Stop()
	if r := query(t, "127.0.0.1:"+port, codec.Encode(realBeacon, 1795549302, zone), dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("report: %v", r)
	}
	// The first pull starts with the server; wait for its failure to count.
	var exported map[string]bool
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		exported = scrape(t, metricsAddr)
		if exported["coredns_statusengine_peer_errors_total"] || time.Now().After(deadline) {
			break
		}
	}
	for name, files := range used {
		if !exported[name] {
			t.Errorf("%s is used in %s but a running server does not export it", name, strings.Join(files, ", "))
		}
	}
}

// scrape returns the names of the series on addr's /metrics.
func scrape(t *testing.T, addr string) map[string]bool {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exported := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		exported[name] = true
	}
	return exported
}

// The dashboard is valid JSON with the panels the README promises, each
// with a query.
func TestDashboardPanels(t *testing.T) {
	b, err := os.ReadFile("../../dist/grafana/statusengine.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	for _, want := range []string{"Reports by outcome", "Commit latency", "Batch size", "Records", "Peer lag", "Peer errors",
		"JetStream outbox", "JetStream consumer lag", "JetStream errors", "Dropped from the stream"} {
		if !slices.Contains(titles, want) {
			t.Errorf("the dashboard has no panel %q (panels: %q)", want, titles)
		}
	}
	if d.UID == "" {
		t.Error("the dashboard has no uid")
	}
}
