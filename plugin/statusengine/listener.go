package statusengine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coredns/caddy"

	"github.com/statusengine/statusengine/api"
)

// The side listeners are process-wide: one per api address, bound when a
// Corefile naming it is set up, and kept with their connections for as long
// as a running configuration names the address. A reload only hands each
// listener its new configuration (token, limits, store), which requests that
// start after it see; it never waits for a client. An address no running
// configuration names any more is closed.
//
// Which configurations are running is caddy's list of instances: a reload's
// new instance joins it before its setup and the old one leaves it once the
// new one has started (or the new one leaves it when it failed).
var (
	apiMu        sync.Mutex
	apiListeners = map[string]*sideListener{} // by the address as written
)

// sideListener is one api address's HTTP server.
type sideListener struct {
	addr    string
	ln      net.Listener
	srv     *http.Server
	handler *api.Server
	users   map[*apiUsers]bool // the configurations naming it
	closing atomic.Bool
}

// apiUsers are the statusengine blocks of one caddy instance (one loaded
// Corefile) that have an api address.
type apiUsers struct {
	blocks map[string]*StatusEngine // by api address
	// zones are the zones of every block sharing an address: those an
	// import through it accepts, and those ?zone= may name; titles their
	// status page titles (the blocks' title).
	zones  map[string][]string
	titles map[string]map[string]string
}

// apiUsersKey stores an instance's apiUsers in the instance's Storage.
type apiUsersKey struct{}

// closeGrace is how long the requests under way on a listener that is closed
// may go on; its address is free at once.
const closeGrace = 10 * time.Second

// ListenAddr is the address the last bound side listener got, for tests
// that ask for port 0.
var ListenAddr string

// setupAPI binds se's api address (or takes the listener this process holds
// on it) while the Corefile is set up: an address in use fails the setup,
// naming the address, so CoreDNS does not start, and a reload onto it is
// refused while the running configuration goes on.
func setupAPI(c *caddy.Controller, se *StatusEngine) error {
	users, _ := c.Get(apiUsersKey{}).(*apiUsers)
	if users == nil {
		users = &apiUsers{blocks: map[string]*StatusEngine{}, zones: map[string][]string{}, titles: map[string]map[string]string{}}
		c.Set(apiUsersKey{}, users)
		// Before the blocks' own shutdown closes their stores.
		c.OnShutdown(func() error { users.shutdown(); return nil })
		c.OnFinalShutdown(func() error { releaseUnused(users); return nil })
	}
	addr := se.api.addr
	if other := users.blocks[addr]; other != nil && (other.dbPath != se.dbPath || !sameAPI(other.api, se.api)) {
		return se.api.errorf("another statusengine block (line %d) serves this address with another db or api settings", other.api.line)
	}

	apiMu.Lock()
	defer apiMu.Unlock()
	l := apiListeners[addr]
	if l == nil {
		var err error
		if l, err = listenAPI(addr); err != nil {
			return se.api.errorf("%v", err)
		}
		apiListeners[addr] = l
	}
	l.users[users] = true
	users.blocks[addr] = se
	users.zones[addr] = append(users.zones[addr], se.Zones...)
	if se.title != "" {
		if users.titles[addr] == nil {
			users.titles[addr] = map[string]string{}
		}
		for _, z := range se.Zones {
			users.titles[addr][z] = se.title
		}
	}
	return nil
}

// attachAPI hands se's listener its configuration once se's store is open:
// registered after se.startup.
func attachAPI(c *caddy.Controller) {
	users, _ := c.Get(apiUsersKey{}).(*apiUsers)
	if users == nil {
		return
	}
	c.OnStartup(func() error { users.attach(); return nil })
	c.OnRestartFailed(func() error { users.attach(); return nil })
}

// sameAPI tells whether two blocks may share one listener.
func sameAPI(a, b apiConfig) bool {
	return a.token == b.token && a.cityDatabase == b.cityDatabase && a.limits == b.limits && a.publicMin == b.publicMin
}

// listenAPI binds addr and serves it. An address this process already
// listens on under another spelling (localhost:8053, 127.0.0.1:8053) is
// shared rather than refused. apiMu is held.
func listenAPI(addr string) (*sideListener, error) {
	ln, err := api.Listen(addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			if l := sameSocket(addr); l != nil {
				return l, nil
			}
		}
		return nil, err
	}
	h := api.New()
	l := &sideListener{addr: addr, ln: ln, srv: api.NewHTTPServer(h), handler: h, users: map[*apiUsers]bool{}}
	ListenAddr = ln.Addr().String()
	go func() {
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !l.closing.Load() {
			log.Errorf("api listener on %s: %v", addr, err)
		}
	}()
	return l, nil
}

// sameSocket finds the listener bound to the address addr resolves to.
func sameSocket(addr string) *sideListener {
	want, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil
	}
	for _, l := range apiListeners {
		if got, ok := l.ln.Addr().(*net.TCPAddr); ok && got.Port == want.Port && got.IP.Equal(want.IP) {
			return l
		}
	}
	return nil
}

// attach hands each listener of the instance its block's configuration and
// store, and closes the listeners no running instance names. It runs when
// the instance starts, and again when a reload that replaced it failed.
func (u *apiUsers) attach() {
	apiMu.Lock()
	defer apiMu.Unlock()
	for addr, se := range u.blocks {
		l := apiListeners[addr]
		if l == nil || se.store == nil { // a block whose startup is still to come
			continue
		}
		l.users[u] = true
		l.handler.Configure(se.store, api.Config{Token: se.api.token, ReadToken: se.api.readToken, Zones: u.zones[addr], Titles: u.titles[addr], CityDatabase: se.api.cityDatabase, Limits: se.api.limits,
			PublicMin: se.api.publicMin, Advisories: se.api.advisories})
	}
	closeUnusedLocked(nil)
}

// shutdown runs when the instance stops: after a reload that replaced it,
// its listeners the new instance does not name are closed, letting their
// requests finish; at the process's end (the instance still running) they
// are closed at once, so that no slow client holds a store being closed.
func (u *apiUsers) shutdown() {
	apiMu.Lock()
	defer apiMu.Unlock()
	if !runningUsers(nil)[u] {
		closeUnusedLocked(nil)
		return
	}
	for addr, l := range apiListeners {
		if l.users[u] {
			delete(apiListeners, addr)
			l.closing.Store(true)
			l.srv.Close()
		}
	}
}

// releaseUnused closes the listeners that no running instance names, gone
// (when not nil) counting as stopped.
func releaseUnused(gone *apiUsers) {
	apiMu.Lock()
	defer apiMu.Unlock()
	closeUnusedLocked(gone)
}

// runningUsers are the apiUsers of caddy's running instances, but gone.
func runningUsers(gone *apiUsers) map[*apiUsers]bool {
	running := map[*apiUsers]bool{}
	for _, inst := range caddy.Instances() {
		inst.StorageMu.RLock()
		if u, ok := inst.Storage[apiUsersKey{}].(*apiUsers); ok && u != gone {
			running[u] = true
		}
		inst.StorageMu.RUnlock()
	}
	return running
}

func closeUnusedLocked(gone *apiUsers) {
	running := runningUsers(gone)
	for addr, l := range apiListeners {
		for u := range l.users {
			if !running[u] {
				delete(l.users, u)
			}
		}
		if len(l.users) == 0 {
			delete(apiListeners, addr)
			l.close()
		}
	}
}

// close frees the address at once and lets the requests under way finish
// for up to closeGrace in the background.
func (l *sideListener) close() {
	l.closing.Store(true)
	l.ln.Close()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
		defer cancel()
		if l.srv.Shutdown(ctx) != nil {
			l.srv.Close()
		}
	}()
}
