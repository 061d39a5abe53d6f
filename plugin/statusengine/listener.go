package statusengine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/reuseport"
	"github.com/coredns/coredns/plugin/pkg/uniq"

	"github.com/statusengine/statusengine/api"
)

// The side listeners are process-wide, like the prometheus plugin's: one per
// address, closed on reload and opened again by the new configuration.
var (
	apiUniq = uniq.New()

	apiMu      sync.Mutex
	apiServers = map[string]*sideListener{}
)

type sideListener struct {
	handler *api.Server
	srv     *http.Server
	ln      net.Listener
}

// ListenAddr is the address the last started side listener bound, for tests
// that ask for port 0.
var ListenAddr string

func setupAPI(c *caddy.Controller, se *StatusEngine) {
	addr := se.api.addr
	start := func() error { return startAPI(addr) }
	attach := func() error {
		apiMu.Lock()
		defer apiMu.Unlock()
		if l := apiServers[addr]; l != nil {
			l.handler.SetConfig(api.Config{Token: se.api.token, CityDatabase: se.api.cityDatabase, Limits: se.api.limits})
			l.handler.SetStore(se.store)
		}
		return nil
	}
	c.OnStartup(func() error { apiUniq.Set(addr, start); return nil })
	c.OnStartup(func() error { return apiUniq.ForEach() })
	c.OnStartup(attach)
	c.OnRestartFailed(func() error { apiUniq.Set(addr, start); return nil })
	c.OnRestartFailed(func() error { return apiUniq.ForEach() })
	c.OnRestartFailed(attach)
	c.OnRestart(func() error { apiUniq.Unset(addr); return stopAPI(addr) })
	c.OnFinalShutdown(func() error { return stopAPI(addr) })
}

func startAPI(addr string) error {
	apiMu.Lock()
	defer apiMu.Unlock()
	if apiServers[addr] != nil {
		return nil
	}
	ln, err := reuseport.Listen("tcp", addr)
	if err != nil {
		log.Errorf("failed to start api listener on %s: %v", addr, err)
		return err
	}
	h := api.New()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	apiServers[addr] = &sideListener{handler: h, srv: srv, ln: ln}
	ListenAddr = ln.Addr().String()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorf("api listener on %s: %v", addr, err)
		}
	}()
	return nil
}

func stopAPI(addr string) error {
	apiMu.Lock()
	l := apiServers[addr]
	delete(apiServers, addr)
	apiMu.Unlock()
	if l == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return l.srv.Shutdown(ctx)
}
