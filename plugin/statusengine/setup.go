package statusengine

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

func init() { plugin.Register(pluginName, setup) }

// Defaults for a statusengine block without options.
const (
	defaultTTL  = 60
	defaultDB   = "statusengine.db"
	defaultAPI  = "localhost:8053"
	maxTTLValue = 86400 * 7
)

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

func (se *StatusEngine) shutdown() error {
	se.repl.stop()
	st := se.store
	if st == nil {
		return nil
	}
	return store.Release(st)
}

func parse(c *caddy.Controller) (*StatusEngine, error) {
	se := &StatusEngine{
		answers: answers{ttl: defaultTTL, serial: uint32(time.Now().Unix())},
		policy:  store.Policy{LimitPerMinute: defaultLimitPerMinute, LimitBurst: defaultLimitBurst},

		answerWait: store.DefaultAnswerWait,
	}
	db := defaultDB
	se.api.addr = defaultAPI

	seen := map[string]bool{} // properties given
	i := 0
	for c.Next() {
		if i > 0 {
			// plugin.ErrOnce names no line.
			return nil, c.Errf("statusengine can only be used once per server block")
		}
		i++
		se.Zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		for _, z := range se.Zones {
			if _, ok := dns.IsDomainName(z); !ok {
				return nil, c.Errf("invalid zone %q", z)
			}
		}

		for c.NextBlock() {
			property := c.Val()
			if seen[property] {
				return nil, c.Errf("%s specified more than once", property)
			}
			seen[property] = true
			args := c.RemainingArgs()
			switch property {
			case "answer":
				if len(args) == 0 {
					return nil, c.Errf("answer needs at least one IP address")
				}
				for _, a := range args {
					ip := net.ParseIP(a)
					if ip == nil {
						return nil, c.Errf("answer: %q is not an IP address", a)
					}
					if v4 := ip.To4(); v4 != nil {
						se.answers.a = append(se.answers.a, v4)
					} else {
						se.answers.aaaa = append(se.answers.aaaa, ip)
					}
				}
				if len(se.answers.a) == 0 {
					// ModSecurity asks for A only and takes no answer
					// as a failed report.
					return nil, c.Errf("answer needs an IPv4 address: clients ask for A records (AAAA alone answers them NODATA)")
				}
			case "ttl":
				if len(args) != 1 {
					return nil, c.Errf("ttl needs one value")
				}
				ttl, err := parseTTL(args[0])
				if err != nil {
					return nil, c.Errf("ttl: %v", err)
				}
				se.answers.ttl = ttl
			case "db":
				if len(args) != 1 || args[0] == "" {
					return nil, c.Errf("db needs one file name")
				}
				path, err := dbPath(c, args[0])
				if err != nil {
					return nil, c.Errf("db: %v", err)
				}
				db = path
			case "api":
				if len(args) != 1 {
					return nil, c.Errf("api needs one address (host:port) or off")
				}
				if args[0] == "off" {
					if c.NextArg() {
						return nil, c.Errf("api off takes no block")
					}
					se.api.addr = ""
					break
				}
				if _, port, err := net.SplitHostPort(args[0]); err != nil || port == "" {
					return nil, c.Errf("api: %q is not host:port", args[0])
				}
				se.api.addr = args[0]
				if err := parseAPIBlock(c, &se.api); err != nil {
					return nil, err
				}
			case "geoip":
				if len(args) != 1 || args[0] == "" {
					return nil, c.Errf("geoip needs one database file name")
				}
				path := args[0]
				if root := dnsserver.GetConfig(c).Root; root != "" && !filepath.IsAbs(path) {
					path = filepath.Join(root, path)
				}
				loc, err := openLocator(path)
				if err != nil {
					return nil, c.Errf("geoip: %v", err)
				}
				se.geo, se.api.cityDatabase = loc, loc.HasPoints()
			case "ns":
				if len(args) == 0 {
					return nil, c.Errf("ns needs at least one name server name")
				}
				for _, arg := range args {
					ns, err := parseNS(arg)
					if err != nil {
						return nil, c.Errf("ns: %v", err)
					}
					se.answers.ns = append(se.answers.ns, ns)
				}
			case "peers":
				pc, err := parsePeers(c, args)
				if err != nil {
					return nil, err
				}
				se.peers = pc
			case "answer_deadline":
				d, err := parseAnswerDeadline(args)
				if err != nil {
					return nil, c.Errf("answer_deadline: %v", err)
				}
				se.answerWait = d
			case "limit", "max_size", "addresses", "retention":
				if err := parsePolicyOption(c, se, property, args); err != nil {
					return nil, err
				}
			default:
				return nil, c.Errf("unknown property %q", property)
			}
		}
	}
	if len(se.answers.a) == 0 && len(se.answers.aaaa) == 0 {
		se.answers.a = []net.IP{net.IPv4(127, 0, 0, 1).To4()}
	}
	if !seen["db"] {
		path, err := dbPath(c, db)
		if err != nil {
			return nil, c.Errf("db (default %s): %v", defaultDB, err)
		}
		db = path
	}
	se.dbPath = db
	if se.geo == nil {
		loc, err := defaultLocator()
		if err != nil {
			return nil, c.Errf("%v", err)
		}
		se.geo = loc
	}
	se.answers.build(se.Zones)
	return se, nil
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

// parseNS reads one name server of the ns property: NAME, or
// NAME=ADDR[,ADDR...] with the addresses the name resolves to when it lies
// inside the zone.
func parseNS(arg string) (nsServer, error) {
	name, list, hasAddrs := strings.Cut(arg, "=")
	if _, ok := dns.IsDomainName(name); !ok || name == "" || name == "." {
		return nsServer{}, fmt.Errorf("%q is not a domain name", name)
	}
	ns := nsServer{name: strings.ToLower(name)}
	if !hasAddrs {
		return ns, nil
	}
	for _, a := range strings.Split(list, ",") {
		ip := net.ParseIP(a)
		if ip == nil || ip.IsUnspecified() {
			return nsServer{}, fmt.Errorf("%q of %s is not an IP address", a, name)
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		ns.addrs = append(ns.addrs, ip)
	}
	return ns, nil
}

// parseTTL takes seconds ("60") or a Go duration ("1m").
func parseTTL(s string) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		if n > maxTTLValue {
			return 0, errTTLRange
		}
		return uint32(n), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errTTLSyntax(s)
	}
	if d < 0 || d > maxTTLValue*time.Second {
		return 0, errTTLRange
	}
	return uint32(d / time.Second), nil
}

// maxAnswerDeadline bounds answer_deadline: resolvers give up on an answer
// long before (BIND after about 2 s); a longer wait is off in all but name.
const maxAnswerDeadline = time.Minute

// parseAnswerDeadline reads the arguments of answer_deadline: a duration
// from 1ms to maxAnswerDeadline, or off (store.NoAnswerDeadline).
func parseAnswerDeadline(args []string) (time.Duration, error) {
	if len(args) != 1 {
		return 0, errors.New("needs one duration (e.g. 300ms) or off")
	}
	if args[0] == "off" {
		return store.NoAnswerDeadline, nil
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d < time.Millisecond || d > maxAnswerDeadline {
		return 0, fmt.Errorf("%q is not a duration from 1ms to %v, or off", args[0], maxAnswerDeadline)
	}
	return d, nil
}
