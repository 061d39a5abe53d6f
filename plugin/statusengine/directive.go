package statusengine

import (
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
)

// AddDirective puts statusengine into CoreDNS's directive order right after
// template (both synthesise answers for whole zones), for binaries and tests
// built outside CoreDNS's own tree, where plugin.cfg does this instead. Call
// it from an init function, before any Corefile is parsed; it does nothing
// when statusengine is already listed.
func AddDirective() {
	d := dnsserver.Directives
	if slices.Contains(d, pluginName) {
		return
	}
	i := slices.Index(d, "template")
	if err := dnsserver.SetDirectives(slices.Insert(slices.Clone(d), i+1, pluginName)); err != nil {
		panic(err) // only on a duplicate or empty name, which the check above rules out
	}
}
