package statusengine

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"

	"github.com/statusengine/statusengine/api"
	"github.com/statusengine/statusengine/plugin/statusengine/advisory"
)

// apiConfig is the side listener of one statusengine block.
type apiConfig struct {
	addr         string
	file         string // where the api property is, for errors found after parsing
	line         int
	token        string // guards raw records when set
	readToken    string // reads /api/v1/reports only: what peers pull with
	cityDatabase bool   // geoip gave a City database: the map has points
	limits       api.Limits
	publicMin    api.Floor     // zero: api.DefaultFloor
	advisories   *advisory.Set // nil: advisory.Default
}

// Bounds of the api block's numbers: beyond them a value is a typo.
const (
	maxAPISlots   = 100000
	maxAPITimeout = time.Hour
	minAPIRate    = 1 << 10
	minAPICache   = 64 << 10
)

// errorf is an error about the api property found after parsing (binding its
// address), naming the property's line as c.Errf would.
func (a *apiConfig) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d - api %s: %s", a.file, a.line, a.addr, fmt.Sprintf(format, args...))
}

// parseAPI reads api ADDR [{ ... }] or api off: the address of the side
// HTTP listener (JSON API and status page), and its block.
func parseAPI(c *caddy.Controller, se *StatusEngine, args []string) error {
	if len(args) != 1 {
		return c.Errf("api needs one address (host:port) or off")
	}
	if args[0] == "off" {
		if c.NextArg() {
			return c.Errf("api off takes no block")
		}
		se.api.addr = ""
		return nil
	}
	if _, port, err := net.SplitHostPort(args[0]); err != nil || port == "" {
		return c.Errf("api: %q is not host:port", args[0])
	}
	se.api.addr = args[0]
	return parseAPIBlock(c, &se.api)
}

// parseAPIBlock reads the optional block of the api property:
//
//	api ADDR {
//	    token TOKEN | token_file FILE
//	    read_token TOKEN | read_token_file FILE
//	    max_requests N
//	    max_expensive N
//	    queue_wait DURATION
//	    write_timeout DURATION
//	    read_timeout DURATION
//	    min_rate SIZE
//	    cache SIZE [ENTRIES]
//	    public_min INSTALLATIONS [NETWORKS]
//	    advisories [extend] FILE|DIR
//	}
func parseAPIBlock(c *caddy.Controller, cfg *apiConfig) error {
	cfg.file, cfg.line = c.File(), c.Line()
	block, err := openBlock(c, "api")
	if !block || err != nil {
		return err
	}
	seen := map[string]bool{}
	err = parseNested(c, "api", func(property string) error {
		if err := parseAPIProperty(c, cfg, property, c.RemainingArgs()); err != nil {
			return err
		}
		if seen[property] {
			return c.Errf("api: %s specified more than once", property)
		}
		if (property == "token" && seen["token_file"]) || (property == "token_file" && seen["token"]) {
			return c.Errf("api: only one of token and token_file")
		}
		if (property == "read_token" && seen["read_token_file"]) || (property == "read_token_file" && seen["read_token"]) {
			return c.Errf("api: only one of read_token and read_token_file")
		}
		seen[property] = true
		return nil
	})
	if err != nil {
		return err
	}
	return checkReadToken(cfg)
}

// checkReadToken holds the read token to its meaning, once the block is
// read: it narrows what a token opens, so there must be a token, and
// another one.
func checkReadToken(cfg *apiConfig) error {
	switch {
	case cfg.readToken == "":
		return nil
	case cfg.token == "":
		return cfg.errorf("read_token needs token (without token every endpoint is open, and a read token guards nothing)")
	case cfg.readToken == cfg.token:
		return cfg.errorf("read_token is the same as token (give the peers a token of their own)")
	}
	return nil
}

// parseAPIProperty reads one property of the api block, given its
// arguments.
func parseAPIProperty(c *caddy.Controller, cfg *apiConfig, property string, args []string) error {
	switch property {
	case "token", "read_token", "token_file", "read_token_file":
		return parseAPIToken(c, cfg, property, args)
	case "max_requests", "max_expensive":
		return parseAPISlots(c, &cfg.limits, property, args)
	case "queue_wait", "write_timeout", "read_timeout":
		return parseAPITimeout(c, &cfg.limits, property, args)
	case "min_rate":
		return parseAPIMinRate(c, &cfg.limits, args)
	case "cache":
		return parseAPICache(c, &cfg.limits, args)
	case "advisories":
		return parseAdvisories(c, cfg, args)
	case "public_min":
		f, err := parsePublicMin(args)
		if err != nil {
			return c.Errf("api: public_min: %v", err)
		}
		cfg.publicMin = f
		return nil
	}
	return c.Errf("api: unknown property %q", property)
}

// parseAPIToken reads token TOKEN, token_file FILE, read_token TOKEN or
// read_token_file FILE: the token that guards raw records, and the one that
// reads /api/v1/reports only.
func parseAPIToken(c *caddy.Controller, cfg *apiConfig, property string, args []string) error {
	dst := &cfg.token
	if strings.HasPrefix(property, "read_") {
		dst = &cfg.readToken
	}
	if !strings.HasSuffix(property, "_file") {
		if len(args) != 1 || args[0] == "" {
			return c.Errf("api: %s needs one value", property)
		}
		*dst = args[0]
		return nil
	}
	if len(args) != 1 || args[0] == "" {
		return c.Errf("api: %s needs one file name", property)
	}
	tok, err := readTokenFile(c, "api", property, args[0])
	if err != nil {
		return err
	}
	*dst = tok
	return nil
}

// parseAPISlots reads max_requests N or max_expensive N: how many requests,
// or expensive requests, the API serves at once.
func parseAPISlots(c *caddy.Controller, l *api.Limits, property string, args []string) error {
	if len(args) != 1 {
		return c.Errf("api: %s needs one number", property)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > maxAPISlots {
		return c.Errf("api: %s: %q is not a number from 1 to %d", property, args[0], maxAPISlots)
	}
	if property == "max_requests" {
		l.MaxRequests = n
	} else {
		l.MaxExpensive = n
	}
	return nil
}

// parseAPITimeout reads queue_wait, write_timeout or read_timeout DURATION.
func parseAPITimeout(c *caddy.Controller, l *api.Limits, property string, args []string) error {
	if len(args) != 1 {
		return c.Errf("api: %s needs one duration", property)
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d <= 0 || d > maxAPITimeout {
		return c.Errf("api: %s: %q is not a duration from 1ms to %v", property, args[0], maxAPITimeout)
	}
	switch property {
	case "queue_wait":
		l.QueueWait = d
	case "write_timeout":
		l.WriteTimeout = d
	default:
		l.ReadTimeout = d
	}
	return nil
}

// parseAPIMinRate reads min_rate SIZE: the average rate, in bytes a
// second, that a long answer or upload must keep up.
func parseAPIMinRate(c *caddy.Controller, l *api.Limits, args []string) error {
	if len(args) != 1 {
		return c.Errf("api: min_rate needs one size (bytes a second), e.g. 32K")
	}
	n, err := parseSize(args[0])
	if err != nil || n < minAPIRate {
		return c.Errf("api: min_rate: %q is not a size of at least 1K (bytes a second)", args[0])
	}
	l.MinRate = int64(n)
	return nil
}

// parseAPICache reads cache SIZE [ENTRIES]: the bounds of the cache of
// summary and map answers.
func parseAPICache(c *caddy.Controller, l *api.Limits, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return c.Errf("api: cache needs SIZE [ENTRIES]")
	}
	n, err := parseSize(args[0])
	if err != nil || n < minAPICache {
		return c.Errf("api: cache: %q is not a size of at least 64K", args[0])
	}
	l.CacheBytes = int64(n)
	if len(args) == 2 {
		e, err := strconv.Atoi(args[1])
		if err != nil || e < 1 || e > maxAPISlots {
			return c.Errf("api: cache: %q is not a number of entries from 1 to %d", args[1], maxAPISlots)
		}
		l.CacheEntries = e
	}
	return nil
}

// parsePublicMin reads public_min's INSTALLATIONS [NETWORKS]. NETWORKS
// defaults to the default floor's, but never above INSTALLATIONS: a group
// of one installation has one network, so "public_min 1" turns the floor
// off like "public_min 1 1".
func parsePublicMin(args []string) (api.Floor, error) {
	if len(args) < 1 || len(args) > 2 {
		return api.Floor{}, fmt.Errorf("needs INSTALLATIONS [NETWORKS]")
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || n < 1 || n > api.MaxFloorInstallations {
		return api.Floor{}, fmt.Errorf("%q is not a number of installations from 1 to %d", args[0], api.MaxFloorInstallations)
	}
	f := api.Floor{Installations: n, Networks: min(api.DefaultFloor.Networks, n)}
	if len(args) == 2 {
		m, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil || m < 1 || m > api.MaxFloorNetworks {
			return api.Floor{}, fmt.Errorf("%q is not a number of networks from 1 to %d", args[1], api.MaxFloorNetworks)
		}
		if m > n {
			return api.Floor{}, fmt.Errorf("%d networks need at least %d installations, not %d", m, m, n)
		}
		f.Networks = m
	}
	return f, nil
}

// parseAdvisories reads advisories [extend] FILE|DIR: the OSV advisories
// /api/v1/exposure counts against. Alone, the file or directory replaces
// the embedded default set; with extend it adds to it (a record of the
// same id replaces the default one). The files are read here, so a reload
// reads them again, and a malformed record fails the Corefile, naming the
// file and the record: the running configuration goes on.
func parseAdvisories(c *caddy.Controller, cfg *apiConfig, args []string) error {
	extend := len(args) == 2 && args[0] == "extend"
	if (len(args) != 1 && !extend) || args[len(args)-1] == "" {
		return c.Errf("api: advisories needs [extend] FILE|DIR")
	}
	var base *advisory.Set
	if extend {
		base = advisory.Default()
	}
	set, err := advisory.Load(args[len(args)-1], base, extend)
	if err != nil {
		return c.Errf("api: advisories: %v", err)
	}
	cfg.advisories = set
	return nil
}
