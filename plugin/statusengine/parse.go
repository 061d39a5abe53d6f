package statusengine

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/schemaconf"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// The Corefile's statusengine block is read here and in parse_api.go (the
// api property's block): parse walks the block, and each property has a
// function of its own that checks its arguments and sets what it
// configures. An error names the line and the property (c.Errf); operators
// and tests match the messages, so they change only on purpose.

// Defaults for a statusengine block without options.
const (
	defaultTTL  = 60
	defaultDB   = "statusengine.db"
	defaultAPI  = "localhost:8053"
	maxTTLValue = 86400 * 7
)

// Defaults of the abuse limits: a resolver network may add a new report a
// second on average, in bursts of a minute's worth. A resolver serving many
// real installations stays far below that: each reports once per cold start.
const (
	defaultLimitPerMinute = 60
	defaultLimitBurst     = 60
)

// maxAnswerDeadline bounds answer_deadline: resolvers give up on an answer
// long before (BIND after about 2 s); a longer wait is off in all but name.
const maxAnswerDeadline = time.Minute

// Errors of the value parsers, wrapped with the property by the caller.
var (
	errTTLRange   = errors.New("must be between 0 and 604800 seconds")
	errSizeSyntax = errors.New("not a size in bytes with an optional K, M, G or T suffix")
)

// parse reads the statusengine block of a server block:
//
//	statusengine [ZONES...] {
//	    answer ADDR...
//	    ttl SECONDS|DURATION
//	    ns NAME[=ADDR[,ADDR...]]...
//	    db FILE
//	    api ADDR [{ ... }] | off
//	    geoip FILE
//	    peers URL... [{ ... }]
//	    jetstream URL... [{ ... }]
//	    answer_deadline DURATION | off
//	    limit RATE_PER_MINUTE [BURST] | off
//	    max_size SIZE
//	    addresses full | truncate | drop
//	    retention DURATION [SWEEP_INTERVAL]
//	    schema modsecurity | schema { fields NAME...; min_fields N; version F; platform F; id F }
//	    title TEXT
//	}
func parse(c *caddy.Controller) (*StatusEngine, error) {
	se := &StatusEngine{
		answers:    answers{ttl: defaultTTL, serial: uint32(time.Now().Unix())},
		policy:     store.Policy{LimitPerMinute: defaultLimitPerMinute, LimitBurst: defaultLimitBurst},
		answerWait: store.DefaultAnswerWait,
		api:        apiConfig{addr: defaultAPI},
		schema:     codec.ModSecurity,
	}
	seen := map[string]bool{} // properties given
	for i := 0; c.Next(); i++ {
		if i > 0 {
			// plugin.ErrOnce names no line.
			return nil, c.Errf("statusengine can only be used once per server block")
		}
		if err := parseZones(c, se); err != nil {
			return nil, err
		}
		for c.NextBlock() {
			property := c.Val()
			if seen[property] {
				return nil, c.Errf("%s specified more than once", property)
			}
			seen[property] = true
			if err := parseProperty(c, se, property, c.RemainingArgs()); err != nil {
				return nil, err
			}
		}
	}
	if err := parseDefaults(c, se); err != nil {
		return nil, err
	}
	return se, nil
}

// parseProperty reads one property of the block, given its arguments.
func parseProperty(c *caddy.Controller, se *StatusEngine, property string, args []string) error {
	switch property {
	case "answer":
		return parseAnswer(c, se, args)
	case "ttl":
		return parseTTL(c, se, args)
	case "ns":
		return parseNS(c, se, args)
	case "db":
		return parseDB(c, se, args)
	case "api":
		return parseAPI(c, se, args)
	case "geoip":
		return parseGeoIP(c, se, args)
	case "peers":
		return parsePeers(c, se, args)
	case "jetstream":
		return parseJetStream(c, se, args)
	case "answer_deadline":
		return parseAnswerDeadline(c, se, args)
	case "limit":
		return parseLimit(c, se, args)
	case "max_size":
		return parseMaxSize(c, se, args)
	case "addresses":
		return parseAddresses(c, se, args)
	case "retention":
		return parseRetention(c, se, args)
	case "schema":
		return parseSchema(c, se, args)
	case "title":
		return parseTitle(c, se, args)
	}
	return c.Errf("unknown property %q", property)
}

// parseZones reads the zones: the directive's arguments, else the server
// block's keys.
func parseZones(c *caddy.Controller, se *StatusEngine) error {
	se.Zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
	for _, z := range se.Zones {
		if _, ok := dns.IsDomainName(z); !ok {
			return c.Errf("invalid zone %q", z)
		}
	}
	return nil
}

// parseDefaults completes the configuration once the block is read: the
// answer 127.0.0.1, the database file and the embedded country database
// where the block gives none, then the answers of the zones.
func parseDefaults(c *caddy.Controller, se *StatusEngine) error {
	if len(se.answers.a) == 0 && len(se.answers.aaaa) == 0 {
		se.answers.a = []net.IP{net.IPv4(127, 0, 0, 1).To4()}
	}
	if se.dbPath == "" {
		path, err := dbPath(c, defaultDB)
		if err != nil {
			return c.Errf("db (default %s): %v", defaultDB, err)
		}
		se.dbPath = path
	}
	if se.geo == nil {
		loc, err := defaultLocator()
		if err != nil {
			return c.Errf("%v", err)
		}
		se.geo = loc
	}
	se.answers.build(se.Zones)
	return nil
}

// parseAnswer reads answer ADDR...: the addresses the names of the zone
// resolve to. One must be IPv4: ModSecurity asks for A only and takes no
// answer as a failed report.
func parseAnswer(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) == 0 {
		return c.Errf("answer needs at least one IP address")
	}
	for _, a := range args {
		ip := net.ParseIP(a)
		if ip == nil {
			return c.Errf("answer: %q is not an IP address", a)
		}
		if v4 := ip.To4(); v4 != nil {
			se.answers.a = append(se.answers.a, v4)
		} else {
			se.answers.aaaa = append(se.answers.aaaa, ip)
		}
	}
	if len(se.answers.a) == 0 {
		return c.Errf("answer needs an IPv4 address: clients ask for A records (AAAA alone answers them NODATA)")
	}
	return nil
}

// parseTTL reads ttl SECONDS|DURATION: the TTL of the answers, up to a week.
func parseTTL(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) != 1 {
		return c.Errf("ttl needs one value")
	}
	ttl, err := ttlSeconds(args[0])
	if err != nil {
		return c.Errf("ttl: %v", err)
	}
	se.answers.ttl = ttl
	return nil
}

// ttlSeconds takes seconds ("60") or a Go duration ("1m").
func ttlSeconds(s string) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		if n > maxTTLValue {
			return 0, errTTLRange
		}
		return uint32(n), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither seconds nor a duration like 1m", s)
	}
	if d < 0 || d > maxTTLValue*time.Second {
		return 0, errTTLRange
	}
	return uint32(d / time.Second), nil
}

// parseNS reads ns NAME[=ADDR[,ADDR...]]...: the zone's name servers.
func parseNS(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) == 0 {
		return c.Errf("ns needs at least one name server name")
	}
	for _, arg := range args {
		ns, err := parseNameServer(arg)
		if err != nil {
			return c.Errf("ns: %v", err)
		}
		se.answers.ns = append(se.answers.ns, ns)
	}
	return nil
}

// parseNameServer reads one name server of the ns property: NAME, or
// NAME=ADDR[,ADDR...] with the addresses the name resolves to when it lies
// inside the zone.
func parseNameServer(arg string) (nsServer, error) {
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

// parseDB reads db FILE: the database file, relative to the server block's
// root.
func parseDB(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return c.Errf("db needs one file name")
	}
	path, err := dbPath(c, args[0])
	if err != nil {
		return c.Errf("db: %v", err)
	}
	se.dbPath = path
	return nil
}

// dbPath is the absolute path of the database file name names (relative to
// the server block's root), once checkDB finds that a store can live there.
func dbPath(c *caddy.Controller, name string) (string, error) {
	abs, err := filepath.Abs(inRoot(c, name))
	if err != nil {
		return "", err
	}
	return abs, checkDB(abs)
}

// inRoot is the file name names, relative to the server block's root when
// the name is relative and the block has one.
func inRoot(c *caddy.Controller, name string) string {
	if root := dnsserver.GetConfig(c).Root; root != "" && !filepath.IsAbs(name) {
		return filepath.Join(root, name)
	}
	return name
}

// parseGeoIP reads geoip FILE: a MaxMind-format database (relative to the
// root) that locates resolvers in place of the embedded country database.
func parseGeoIP(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return c.Errf("geoip needs one database file name")
	}
	loc, err := openLocator(inRoot(c, args[0]))
	if err != nil {
		return c.Errf("geoip: %v", err)
	}
	se.geo, se.api.cityDatabase = loc, loc.HasPoints()
	return nil
}

// parseAnswerDeadline reads answer_deadline DURATION|off: how long an
// answer waits for its report to be durable, from 1ms to maxAnswerDeadline,
// or without bound (store.NoAnswerDeadline).
func parseAnswerDeadline(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) != 1 {
		return c.Errf("answer_deadline: needs one duration (e.g. 300ms) or off")
	}
	if args[0] == "off" {
		se.answerWait = store.NoAnswerDeadline
		return nil
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d < time.Millisecond || d > maxAnswerDeadline {
		return c.Errf("answer_deadline: %q is not a duration from 1ms to %v, or off", args[0], maxAnswerDeadline)
	}
	se.answerWait = d
	return nil
}

// parsePeers reads `peers URL... [{ token T | token_file F; interval D;
// ca FILE; insecure }]`; args are the URLs (RemainingArgs stops before a
// block's brace). A token is sent over https, or over http to a loopback
// address only, unless insecure says the operator wants it in clear.
func parsePeers(c *caddy.Controller, se *StatusEngine, args []string) error {
	pc := peersConfig{interval: defaultPeerInterval, file: c.File(), line: c.Line()}
	block, err := openBlock(c, "peers")
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return c.Errf("peers needs at least one URL (the peer's API, e.g. http://ns2.example.net:8053)")
	}
	for _, a := range args {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return c.Errf("peers: %q is not an http(s) URL of an API", a)
		}
		pc.urls = append(pc.urls, strings.TrimSuffix(u.String(), "/"))
	}
	if block {
		seen := map[string]bool{}
		err := parseNested(c, "peers", func(property string) error {
			if seen[property] {
				return c.Errf("peers: %s specified more than once", property)
			}
			seen[property] = true
			return parsePeersProperty(c, &pc, seen, property, c.RemainingArgs())
		})
		if err != nil {
			return err
		}
	}
	if err := checkPeersClear(pc); err != nil {
		return err
	}
	se.peers = pc
	return nil
}

// parsePeersProperty reads one property of the peers block, given its
// arguments; seen holds the properties read so far, this one included.
func parsePeersProperty(c *caddy.Controller, pc *peersConfig, seen map[string]bool, property string, vals []string) error {
	switch property {
	case "token":
		if len(vals) != 1 || vals[0] == "" || seen["token_file"] {
			return c.Errf("peers: token needs one value, and excludes token_file")
		}
		pc.token = vals[0]
	case "token_file":
		if len(vals) != 1 || vals[0] == "" || seen["token"] {
			return c.Errf("peers: token_file needs one file name, and excludes token")
		}
		tok, err := readTokenFile(c, "peers", property, vals[0])
		if err != nil {
			return err
		}
		pc.token = tok
	case "ca":
		return parsePeersCA(c, pc, vals)
	case "insecure":
		if len(vals) != 0 {
			return c.Errf("peers: insecure takes no value")
		}
		pc.insecure = true
	case "interval":
		if len(vals) != 1 {
			return c.Errf("peers: interval needs one duration")
		}
		d, err := time.ParseDuration(vals[0])
		if err != nil || d < minPeerInterval || d > time.Hour {
			return c.Errf("peers: interval %q is not a duration from %v to 1h", vals[0], minPeerInterval)
		}
		pc.interval = d
	default:
		return c.Errf("peers: unknown property %q", property)
	}
	return nil
}

// parsePeersCA reads ca FILE of the peers block: the PEM certificates of the
// CA that signs the peers' certificates, in place of the system's roots.
func parsePeersCA(c *caddy.Controller, pc *peersConfig, vals []string) error {
	if len(vals) != 1 || vals[0] == "" {
		return c.Errf("peers: ca needs one file (PEM certificates of the peers' CA)")
	}
	b, err := os.ReadFile(vals[0])
	if err != nil {
		return c.Errf("peers: ca: %v", err)
	}
	pc.roots = x509.NewCertPool()
	if !pc.roots.AppendCertsFromPEM(b) {
		return c.Errf("peers: ca %q holds no PEM certificate", vals[0])
	}
	return nil
}

// checkPeersClear refuses a token sent in clear across the network: over
// http:// to a host that is not a loopback address, without insecure. The
// peer's token would be read by anyone on the path.
func checkPeersClear(pc peersConfig) error {
	if pc.token == "" || pc.insecure {
		return nil
	}
	for _, raw := range pc.urls {
		u, _ := url.Parse(raw)
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			return fmt.Errorf("%s:%d - Error during parsing: peers: %s would send the token in clear: use https:// (with ca FILE for a private CA), or say insecure to allow it", pc.file, pc.line, raw)
		}
	}
	return nil
}

// loopbackHost tells whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// parseLimit reads limit RATE_PER_MINUTE [BURST] or limit off: how many new
// reports a resolver network may add (limitNetwork), a token bucket.
func parseLimit(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return c.Errf("limit needs RATE_PER_MINUTE [BURST], or off")
	}
	if args[0] == "off" && len(args) == 1 {
		se.policy.LimitPerMinute, se.policy.LimitBurst = 0, 0
		return nil
	}
	rate, err := strconv.ParseFloat(args[0], 64)
	if err != nil || rate <= 0 || rate > 1e9 {
		return c.Errf("limit: %q is not a positive rate per minute", args[0])
	}
	burst := rate
	if len(args) == 2 {
		burst, err = strconv.ParseFloat(args[1], 64)
		if err != nil || burst < 1 || burst > 1e9 {
			return c.Errf("limit: burst %q is not a number of at least 1", args[1])
		}
	}
	se.policy.LimitPerMinute, se.policy.LimitBurst = rate, burst
	return nil
}

// parseMaxSize reads max_size SIZE: the database file's cap, past which
// reports are answered but not stored.
func parseMaxSize(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) != 1 {
		return c.Errf("max_size needs one size, e.g. 10G")
	}
	n, err := parseSize(args[0])
	if err != nil {
		return c.Errf("max_size: %v", err)
	}
	se.policy.MaxSize = n
	return nil
}

// parseAddresses reads addresses full|truncate|drop: how much of the
// resolver and ECS addresses a stored report keeps.
func parseAddresses(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) != 1 {
		return c.Errf("addresses needs one of full, truncate, drop")
	}
	switch args[0] {
	case "full":
		se.addresses = addressesFull
	case "truncate":
		se.addresses = addressesTruncate
	case "drop":
		se.addresses = addressesDrop
	default:
		return c.Errf("addresses: %q is not one of full, truncate, drop", args[0])
	}
	return nil
}

// parseRetention reads retention DURATION [SWEEP_INTERVAL]: how long a
// report is kept, and how often the sweep deletes the older ones.
func parseRetention(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return c.Errf("retention needs DURATION [SWEEP_INTERVAL]")
	}
	d, err := parseDays(args[0])
	if err != nil || d <= 0 {
		return c.Errf("retention: %q is not a positive duration like 400d or 12h", args[0])
	}
	se.policy.Retention = d
	if len(args) == 2 {
		sw, err := time.ParseDuration(args[1])
		if err != nil || sw < time.Second {
			return c.Errf("retention: sweep interval %q is not a duration of at least 1s", args[1])
		}
		se.policy.SweepEvery = sw
	}
	return nil
}

// maxTitle bounds the title of a zone's page, in bytes.
const maxTitle = 100

// parseSchema reads the schema of the block's zones: schema modsecurity
// (the built-in one, the default), or a block naming a custom beacon's
// fields and roles. The schemaconf package reads it, for the operator tool
// too (--corefile); its errors name the line and the property.
func parseSchema(c *caddy.Controller, se *StatusEngine, args []string) error {
	s, err := schemaconf.Parse(&c.Dispenser, args)
	if err != nil {
		return err
	}
	se.schema = s
	return nil
}

// parseTitle reads title TEXT: the title of the zones' status page (by
// default the page names the zone). Printable text of at most maxTitle
// bytes; quote it when it holds spaces.
func parseTitle(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
		return c.Errf("title needs one text (quote it when it holds spaces)")
	}
	t := args[0]
	if len(t) > maxTitle {
		return c.Errf("title: longer than %d bytes", maxTitle)
	}
	if !utf8.ValidString(t) || strings.IndexFunc(t, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return c.Errf("title: %q holds a control character or is not UTF-8", t)
	}
	se.title = t
	return nil
}

// parseDays is time.ParseDuration that also takes whole days ("400d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, err
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// parseSize reads bytes with an optional K, M, G or T suffix (powers of 1024).
func parseSize(s string) (int, error) {
	mult := 1
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseUint(s, 10, 40)
	if err != nil || v == 0 {
		return 0, errSizeSyntax
	}
	return int(v) * mult, nil
}

// openBlock tells whether a block follows a property's arguments (api,
// peers). The dispenser's NextBlock cannot tell a nested block from the
// next property of the enclosing one, so these blocks are walked by hand.
func openBlock(c *caddy.Controller, property string) (bool, error) {
	if !c.NextArg() {
		return false, nil
	}
	if c.Val() != "{" {
		return false, c.Errf("%s: unexpected %q", property, c.Val())
	}
	return true, nil
}

// parseNested walks a block that openBlock opened to its closing brace,
// giving each property in it to each, which reads the arguments.
func parseNested(c *caddy.Controller, property string, each func(string) error) error {
	for c.Next() {
		if c.Val() == "}" {
			return nil
		}
		if err := each(c.Val()); err != nil {
			return err
		}
	}
	return c.Errf("%s: block is not closed", property)
}

// readTokenFile reads the token in file name, given by property of the
// block of parent (api, peers), without the white space around it.
func readTokenFile(c *caddy.Controller, parent, property, name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", c.Errf("%s: %s: %v", parent, property, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", c.Errf("%s: %s %q is empty", parent, property, name)
	}
	return tok, nil
}
