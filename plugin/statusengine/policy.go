package statusengine

import (
	"net/netip"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// addressMode says how much of the resolver and ECS addresses is kept.
type addressMode uint8

// The values of the addresses property.
const (
	addressesFull addressMode = iota
	addressesTruncate
	addressesDrop
)

// limitNetwork is what the per-source limit charges: the resolver's /24 or
// /48, never the ECS, which the sender chooses. Loopback is not charged
// (invalid prefix): a query from it comes from a local proxy, where every
// resolver would share one bucket, or from a test.
func limitNetwork(a netip.Addr) netip.Prefix {
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
func (se *StatusEngine) keepAddresses(rec *record.Record) {
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
