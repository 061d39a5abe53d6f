package api

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The API's metrics, exported by the prometheus plugin with the plugin's
// own. Label values are fixed sets.
var (
	inFlight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "coredns",
		Subsystem: "statusengine",
		Name:      "api_in_flight",
		Help:      "Gauge of the API requests being served: all, and the expensive ones of the public and of token holders.",
	}, []string{"class"})

	rejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "coredns",
		Subsystem: "statusengine",
		Name:      "api_rejected_total",
		Help:      "Counter of API requests answered 503 because a limit was reached (requests: max_requests, expensive: max_expensive).",
	}, []string{"limit"})

	cacheBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "coredns",
		Subsystem: "statusengine",
		Name:      "api_cache_bytes",
		Help:      "Gauge of the bytes held by the API's response cache.",
	})

	streamsCut = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "coredns",
		Subsystem: "statusengine",
		Name:      "api_streams_cut_total",
		Help:      "Counter of exports and backups cut before their end (a store error, the store replaced by a reload, a client too slow): the client sees a truncated body.",
	})
)
