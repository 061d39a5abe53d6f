package fleet

import (
	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The metrics of the jetstream property, labelled by the stream's name (a
// Corefile value). Records rejected from the stream are counted with the
// peers', in coredns_statusengine_peer_rejected_total{peer="jetstream:STREAM"}.
var (
	outboxBacklog = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "statusengine",
		Name:      "jetstream_outbox",
		Help:      "Gauge of the records this server stored that the JetStream stream has not yet acknowledged.",
	}, []string{"stream"})

	publishErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "statusengine",
		Name:      "jetstream_publish_errors_total",
		Help:      "Counter of failed rounds of publishing the outbox to the JetStream stream.",
	}, []string{"stream"})

	consumeErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "statusengine",
		Name:      "jetstream_consume_errors_total",
		Help:      "Counter of failed fetches from the JetStream stream (or failed stores of what they gave).",
	}, []string{"stream"})

	consumerPending = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "statusengine",
		Name:      "jetstream_consumer_pending",
		Help:      "Gauge of the messages the JetStream stream holds beyond this server's consumer.",
	}, []string{"stream"})
)

// ForgetGauges deletes the series of stream's gauges (the outbox, the
// consumer's pending messages): the plugin calls it once no running Feed
// uses stream, so that they do not show their last values for good.
func ForgetGauges(stream string) {
	outboxBacklog.DeleteLabelValues(stream)
	consumerPending.DeleteLabelValues(stream)
}
