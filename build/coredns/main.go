// Command coredns is stock CoreDNS with the statusengine plugin added: every
// stock plugin stays, so it is a drop-in replacement for the stock binary.
package main

import (
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // every stock plugin
	"github.com/coredns/coredns/coremain"

	_ "github.com/statusengine/statusengine/plugin/statusengine"
)

func init() {
	// Right after template: both synthesise answers for whole zones, and a
	// zone-wide answerer belongs ahead of the backends that follow.
	d := dnsserver.Directives
	i := slices.Index(d, "template")
	if err := dnsserver.SetDirectives(slices.Insert(slices.Clone(d), i+1, "statusengine")); err != nil {
		panic(err)
	}
}

func main() { coremain.Run() }
