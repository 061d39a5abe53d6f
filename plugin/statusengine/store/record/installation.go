package record

import (
	"net/netip"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// InstallationKey estimates which installation sent a record. ModSecurity 2.9.x
// sends only the last byte of its intended 160-bit id, so the id alone merges
// unrelated hosts; adding every version field and the network the report came
// from (the ECS subnet, else the resolver's /24 or /48) separates most of them.
// Two identical builds behind one resolver network with equal id bytes still
// count as one; one host that moves resolver network counts twice.
func InstallationKey(r *Record) string { return string(appendInstallationKey(nil, r)) }

// appendInstallationKey appends InstallationKey(r) to buf: the API hashes
// the key of every row it writes, so InstallationHash builds it in a buffer
// on its stack (a strings.Builder grew it four times, and the network's
// String another allocation: about a fifth of the CPU of a page of
// /api/v1/reports).
func appendInstallationKey(buf []byte, r *Record) []byte {
	rep := &r.Report
	if rep.Format == codec.FormatSchema {
		// A custom schema's: the zone, the id and the whole beacon (which
		// holds every field of the build).
		for _, f := range [...]string{r.Zone, rep.ID, rep.Beacon} {
			buf = append(append(buf, f...), 0)
		}
	} else {
		for _, f := range [...]string{rep.ID, rep.Modsec, rep.Server, rep.APRCompiled, rep.APRLoaded,
			rep.PCRECompiled, rep.PCRELoaded, rep.Lua, rep.Libxml} {
			buf = append(append(buf, f...), 0)
		}
	}
	n := InstallNetwork(r)
	if !n.IsValid() {
		// As netip.Prefix.String has it (AppendTo writes nothing for the
		// zero prefix): keys, and so the hashes the API shows, stay as
		// they were.
		return append(buf, "invalid Prefix"...)
	}
	return n.AppendTo(buf)
}

// InstallNetwork is the network a report came from: the ECS prefix when the
// resolver sent one, else the resolver address, either cut to /24 (IPv4) or
// /48 (IPv6) at most. Resolvers differ in the ECS length they send (/24,
// /32, /56): the cut keeps one host behind two of them one network.
func InstallNetwork(r *Record) netip.Prefix {
	if r.ECS.IsValid() {
		return cutNetwork(r.ECS.Addr(), r.ECS.Bits())
	}
	return cutNetwork(r.Resolver, -1)
}

// ResolverNetwork is the resolver's /24 or /48, ECS or not: what the public
// floor counts, since an ECS option is the sender's to choose and a
// resolver's address is not (spoofed sources aside, which the per-source
// limit bounds).
func ResolverNetwork(r *Record) netip.Prefix { return cutNetwork(r.Resolver, -1) }

// cutNetwork is a/bits, with bits held to 24 (IPv4) or 48 (IPv6); bits < 0
// means the limit.
func cutNetwork(a netip.Addr, bits int) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap()
	limit := 24
	if a.Is6() {
		limit = 48
	}
	if bits < 0 || bits > limit {
		bits = limit
	}
	p, _ := a.Prefix(bits)
	return p
}
