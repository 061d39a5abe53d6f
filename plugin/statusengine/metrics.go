package statusengine

import (
	"context"
	"sync"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Outcomes of a query for a name in a status zone, the values of the outcome label.
const (
	outcomeStored      = "stored"
	outcomeDuplicate   = "duplicate"
	outcomePartial     = "partial"
	outcomeMalformed   = "malformed"
	outcomeStoreFailed = "store_failed"
	outcomeLimited     = "limited"
	outcomeQueued      = "queued"   // answered at answer_deadline while only in memory: stored later, lost if the process dies first
	outcomeRejected    = "rejected" // not a valid record (record.Record.Validate)
	outcomeNS          = "ns"       // a lookup of an in-zone name server name

)

// Label values come from the Corefile and a fixed set, never from the query
// name: an attacker controls the name, and every new value is a new series.
var (
	reportsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "reports_total",
		Help:      "Counter of queries for names in status zones, by outcome.",
	}, []string{"server", "zone", "outcome"})

	commitDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "commit_duration_seconds",
		Help:      "Histogram of the time one store transaction takes to commit, fsync included.",
		Buckets:   prometheus.ExponentialBuckets(0.0001, 2, 16),
	})

	commitBatch = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "commit_batch_size",
		Help:      "Histogram of the number of reports a store transaction answered when it committed.",
		Buckets:   prometheus.ExponentialBuckets(1, 2, 14),
	})

	logDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "log_duration_seconds",
		Help:      "Histogram of the time one batch of reports takes to be stored in the open transaction and written to the write-ahead log, fdatasync included.",
		Buckets:   prometheus.ExponentialBuckets(0.0001, 2, 16),
	})

	logBatch = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "log_batch_size",
		Help:      "Histogram of the number of reports answered once written to the write-ahead log.",
		Buckets:   prometheus.ExponentialBuckets(1, 2, 14),
	})

	logUnstored = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "log_pending",
		Help:      "Gauge of the reports answered and durable in a store's write-ahead log that its database file does not hold yet (nonzero for long: commits fail, e.g. for lack of space).",
	}, []string{"db"})

	storedRecords = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "records",
		Help:      "Gauge of the reports held in a store.",
	}, []string{"db"})
)

var (
	storeFull = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "store_full",
		Help:      "Gauge that is 1 while a store is at its max_size and stores nothing new.",
	}, []string{"db"})

	peerLag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "peer_lag_seconds",
		Help:      "Gauge of the seconds since a pull from a peer last reached its newest record.",
	}, []string{"peer"})

	peerErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "peer_errors_total",
		Help:      "Counter of failed pulls from a peer.",
	}, []string{"peer"})

	peerRejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "peer_rejected_total",
		Help:      "Counter of records from a peer skipped rather than stored, by reason (undecodable, order, zone, invalid).",
	}, []string{"peer", "reason"})

	storeUp = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "store_up",
		Help:      "Gauge that is 1 while a store stores reports, 0 when its file is damaged (reports are answered, not stored).",
	}, []string{"db"})

	retentionDeleted = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "retention_deleted_total",
		Help:      "Counter of reports deleted by the retention sweep.",
	}, []string{"db"})
)

func metricsServer(ctx context.Context) string { return metrics.WithServer(ctx) }

// reportCounters keeps the counter of each (server, zone, outcome) once
// looked up: WithLabelValues hashes its labels on every call. All three come
// from the Corefile or a fixed set, so the map stays small.
var reportCounters sync.Map // [3]string -> prometheus.Counter

func countReport(server, zone, outcome string) {
	k := [3]string{server, zone, outcome}
	c, ok := reportCounters.Load(k)
	if !ok {
		c, _ = reportCounters.LoadOrStore(k, reportsTotal.WithLabelValues(server, zone, outcome))
	}
	c.(prometheus.Counter).Inc()
}

// liveGauges counts the running instances that set a peer's or a stream's
// gauges (peer_lag_seconds; jetstream_outbox, jetstream_consumer_pending):
// once none runs it (a reload took the peer or the jetstream property out
// of the Corefile, or renamed the stream), its series are deleted, else
// they would show their last value for good (a lag alert firing on a peer
// that is gone). A reload starts the new instance before it stops the old
// one, so a label used by both is kept.
var liveGauges = gaugeUsers{n: map[string]int{}}

// gaugeUsers counts the users of gauges' label values, by a key.
type gaugeUsers struct {
	mu sync.Mutex
	n  map[string]int
}

// hold counts one more user of key.
func (u *gaugeUsers) hold(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n[key]++
}

// release counts one user of key less, and calls forget (deleting its
// series) when it was the last.
func (u *gaugeUsers) release(key string, forget func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[key]--; u.n[key] > 0 {
		return
	}
	delete(u.n, key)
	forget()
}
