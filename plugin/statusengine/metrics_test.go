package statusengine

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusengine/statusengine/plugin/statusengine/fleet"
)

// seriesOf counts the series of the metric family name whose label has
// value.
func seriesOf(t *testing.T, name, label, value string) int {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					n++
				}
			}
		}
	}
	return n
}

// waitSeries waits up to 5 s until name has a series of label value.
func waitSeries(t *testing.T, name, label, value string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); seriesOf(t, name, label, value) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no series %s{%s=%q} after 5 s", name, label, value)
		}
	}
}

// TestGaugesForgottenOnReload: a reload starts the new instance before it
// stops the old one; a peer's lag and a stream's gauges stay while an
// instance still pulls or feeds them, and their series go once the last one
// stops (a reload that took them out of the Corefile), so that no alert
// fires on a peer that is gone.
func TestGaugesForgottenOnReload(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"reports":[],"next_cursor":null}`)
	}))
	defer srv.Close()
	url := srv.URL + "/reload"
	pc := peersConfig{urls: []string{url}, interval: time.Hour}
	old := startReplication(pc, []string{testZone}, openTestStore(t))
	waitSeries(t, "coredns_statusengine_peer_lag_seconds", "peer", url)
	renewed := startReplication(pc, []string{testZone}, openTestStore(t))
	old.stop()
	if seriesOf(t, "coredns_statusengine_peer_lag_seconds", "peer", url) != 1 {
		t.Errorf("the lag of a peer the new instance pulls went with the old instance")
	}
	renewed.stop()
	if n := seriesOf(t, "coredns_statusengine_peer_lag_seconds", "peer", url); n != 0 {
		t.Errorf("the lag of a peer no instance pulls: %d series, want none", n)
	}

	// NATS is not running: a feed starts all the same, and sets its
	// outbox gauge at once.
	jc := &jetstreamConfig{Config: fleet.Config{URLs: []string{"nats://127.0.0.1:1"}, Name: "ns1", Stream: "RELOADTEST"}}
	oldFeed, err := startFeed(jc, []string{testZone}, openTestStore(t))
	if err != nil {
		t.Fatal(err)
	}
	waitSeries(t, "coredns_statusengine_jetstream_outbox", "stream", "RELOADTEST")
	newFeed, err := startFeed(jc, []string{testZone}, openTestStore(t))
	if err != nil {
		t.Fatal(err)
	}
	stopFeed(oldFeed, jc)
	if seriesOf(t, "coredns_statusengine_jetstream_outbox", "stream", "RELOADTEST") != 1 {
		t.Errorf("the outbox gauge of a stream the new instance feeds went with the old instance")
	}
	stopFeed(newFeed, jc)
	if n := seriesOf(t, "coredns_statusengine_jetstream_outbox", "stream", "RELOADTEST"); n != 0 {
		t.Errorf("the outbox gauge of a stream no instance feeds: %d series, want none", n)
	}
}
