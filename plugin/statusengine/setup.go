package statusengine

import (
	"errors"
	"net"
	"slices"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

func init() { plugin.Register(pluginName, setup) }

// setup reads the block (parse.go), warns of in-zone name servers that a
// wildcard listener cannot answer rightly, binds the API, and puts the
// plugin in the server's chain; the store opens at startup.
func setup(c *caddy.Controller) error {
	se, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}

	if hosts := se.answers.inZoneHosts(); len(hosts) > 0 && wildcardListener(dnsserver.GetConfig(c).ListenHosts) {
		slices.Sort(hosts)
		log.Warningf("name servers %s lie inside the zone and have no addresses: a listener on all addresses "+
			"cannot tell which one a UDP query arrived on, so over UDP they resolve to the answer addresses; "+
			"give them as ns NAME=ADDR, or listen on the server's address with bind", strings.Join(hosts, " "))
	}
	c.OnFirstStartup(checkBind(dnsserver.GetConfig(c)))
	if se.api.addr != "" {
		if err := setupAPI(c, se); err != nil {
			return plugin.Error(pluginName, err)
		}
	}
	c.OnStartup(se.startup)
	c.OnShutdown(se.shutdown)
	attachAPI(c)

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		se.Next = next
		return se
	})
	return nil
}

// startup opens (or shares, during a reload) the store before queries arrive.
// A damaged file does not stop CoreDNS: the zone is answered, nothing is
// stored, and one line says what to run.
func (se *StatusEngine) startup() error {
	st, err := store.Acquire(se.dbPath, store.Options{
		OnCommit:  observeCommit,
		OnSweep:   observeSweep(se.dbPath),
		OnDown:    observeDown(se.dbPath),
		OnEvent:   func(e string) { log.Info(e) },
		OnWarning: func(e string) { log.Warning(e) },
	})
	var damaged *store.DamagedError
	if errors.As(err, &damaged) {
		log.Errorf("%v; answering %s without storing reports", err, strings.Join(se.Zones, " "))
		storeUp.WithLabelValues(se.dbPath).Set(0)
		return nil
	}
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	// The zones' schema, kept in the file before any report: a change
	// that would make stored reports mean something else is refused here,
	// which fails the start (or the reload: the running instance stays).
	sc := se.schema
	if sc == nil {
		sc = codec.ModSecurity
	}
	if err := st.SetSchema(se.Zones, sc); err != nil && st.Down() == nil {
		store.Release(st)
		return plugin.Error(pluginName, err)
	}
	se.store = st
	if err := st.Down(); err != nil {
		// A reload shares the store, down since a panic inside bbolt: it
		// stays down (its line was written then) until CoreDNS restarts.
		storeUp.WithLabelValues(se.dbPath).Set(0)
		return nil
	}
	storeUp.WithLabelValues(se.dbPath).Set(1)
	resetFull(se.dbPath)
	st.Configure(se.policy)
	storedRecords.WithLabelValues(se.dbPath).Set(float64(st.Count()))
	log.Infof("database %s: %d reports; API %s", se.dbPath, st.Count(), apiURL(se.api.addr))
	if len(se.peers.urls) > 0 {
		se.repl = startReplication(se.peers, se.Zones, st)
	}
	if se.jetstream != nil {
		if se.feed, err = startFeed(se.jetstream, se.Zones, st); err != nil {
			return plugin.Error(pluginName, err)
		}
	}
	return nil
}

// apiURL is where the side listener at addr answers, for the startup line.
func apiURL(addr string) string {
	if addr == "" {
		return "off"
	}
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		addr = net.JoinHostPort("localhost", port)
	}
	return "http://" + addr + "/"
}

// shutdown stops replication and drops this instance's reference to the
// store (the last one closes it).
func (se *StatusEngine) shutdown() error {
	se.repl.stop()
	stopFeed(se.feed, se.jetstream)
	st := se.store
	if st == nil {
		return nil
	}
	return store.Release(st)
}

// wildcardListener tells whether a server block listens on an unspecified
// address (no bind, or bind 0.0.0.0 or ::).
func wildcardListener(hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
			return true
		}
	}
	return false
}
