package statusengine

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// Defaults of the abuse limits: a resolver network may add a new report a
// second on average, in bursts of a minute's worth. A resolver serving many
// real installations stays far below that: each reports once per cold start.
const (
	defaultLimitPerMinute = 60
	defaultLimitBurst     = 60
)

// addressMode says how much of the resolver and ECS addresses is kept.
type addressMode uint8

const (
	addressesFull addressMode = iota
	addressesTruncate
	addressesDrop
)

// parsePolicyOption handles the properties that protect the store and the
// people behind the reports: limit, max_size, addresses, retention.
func parsePolicyOption(c *caddy.Controller, se *StatusEngine, property string, args []string) error {
	switch property {
	case "limit":
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
	case "max_size":
		if len(args) != 1 {
			return c.Errf("max_size needs one size, e.g. 10G")
		}
		n, err := parseSize(args[0])
		if err != nil {
			return c.Errf("max_size: %v", err)
		}
		se.policy.MaxSize = n
	case "addresses":
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
	case "retention":
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
	}
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

// sourceNetwork is what the per-source limit charges: the resolver's /24 or
// /48, never the ECS, which the sender chooses. Loopback is not charged
// (invalid prefix): a query from it comes from a local proxy, where every
// resolver would share one bucket, or from a test.
func sourceNetwork(a netip.Addr) netip.Prefix {
	if a.IsLoopback() || !a.IsValid() {
		return netip.Prefix{}
	}
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	return p
}

// keepAddresses applies the addresses option to a record about to be stored;
// geolocation has already used the full addresses.
func (se *StatusEngine) keepAddresses(rec *store.Record) {
	switch se.addresses {
	case addressesTruncate:
		bits := 24
		if rec.Resolver.Is6() {
			bits = 48
		}
		if p, err := rec.Resolver.Prefix(bits); err == nil {
			rec.Resolver = p.Addr()
		}
		if rec.ECS.IsValid() {
			bits := 24
			if rec.ECS.Addr().Is6() {
				bits = 48
			}
			rec.ECS = netip.PrefixFrom(rec.ECS.Addr(), min(bits, rec.ECS.Bits())).Masked()
		}
	case addressesDrop:
		rec.Resolver, rec.ECS = netip.Addr{}, netip.Prefix{}
	}
}
