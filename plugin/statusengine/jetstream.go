package statusengine

import (
	"github.com/statusengine/statusengine/plugin/statusengine/fleet"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// startFeed starts the jetstream property's publisher and consumer for a
// store (package fleet): records of other zones are refused from the
// stream, and the messages not stored are counted with the peers' records,
// in peer_rejected_total{peer="jetstream:STREAM"}, each reason at 0 from
// the start.
func startFeed(jc *jetstreamConfig, zones []string, st *store.Store) (*fleet.Feed, error) {
	cfg := jc.Config
	cfg.Zones = zones
	peer := "jetstream:" + cfg.Stream
	for _, reason := range []string{fleet.RejectSize, fleet.RejectUndecodable, fleet.RejectZone, fleet.RejectInvalid} {
		peerRejected.WithLabelValues(peer, reason)
	}
	cfg.Reject = func(reason string) { peerRejected.WithLabelValues(peer, reason).Inc() }
	log.Infof("jetstream %v: publishing as %s to stream %s (subject %s)", cfg.URLs, cfg.Name, cfg.Stream, cfg.Subject())
	f, err := fleet.Start(cfg, st)
	if err == nil {
		liveGauges.hold("jetstream " + cfg.Stream)
	}
	return f, err
}

// stopFeed stops a feed startFeed started (nil: none), and deletes its
// stream's gauges when no other instance feeds that stream.
func stopFeed(f *fleet.Feed, jc *jetstreamConfig) {
	if f == nil {
		return
	}
	f.Stop()
	stream := jc.Config.Stream
	liveGauges.release("jetstream "+stream, func() { fleet.ForgetGauges(stream) })
}
