package store

import (
	"net/netip"
	"strings"
)

// InstallationKey estimates which installation sent a record. ModSecurity 2.9.x
// sends only the last byte of its intended 160-bit id, so the id alone merges
// unrelated hosts; adding every version field and the network the report came
// from (the ECS subnet, else the resolver's /24 or /48) separates most of them.
// Two identical builds behind one resolver network with equal id bytes still
// count as one; one host that moves resolver network counts twice.
func InstallationKey(r *Record) string {
	rep := &r.Report
	var b strings.Builder
	for _, f := range []string{rep.ID, rep.Modsec, rep.Server, rep.APRCompiled, rep.APRLoaded,
		rep.PCRECompiled, rep.PCRELoaded, rep.Lua, rep.Libxml} {
		b.WriteString(f)
		b.WriteByte(0)
	}
	b.WriteString(SourceNetwork(r).String())
	return b.String()
}

// SourceNetwork is the network a report came from: the ECS prefix when the
// resolver sent one, else the resolver address cut to /24 (IPv4) or /48 (IPv6).
func SourceNetwork(r *Record) netip.Prefix {
	if r.ECS.IsValid() {
		return r.ECS.Masked()
	}
	if !r.Resolver.IsValid() {
		return netip.Prefix{}
	}
	bits := 24
	if r.Resolver.Is6() {
		bits = 48
	}
	p, _ := r.Resolver.Prefix(bits)
	return p
}
