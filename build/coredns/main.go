// Command coredns is stock CoreDNS with the statusengine plugin added: every
// stock plugin stays, so it is a drop-in replacement for the stock binary.
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // every stock plugin
	"github.com/coredns/coredns/coremain"

	"github.com/statusengine/statusengine/plugin/statusengine"
)

func init() { statusengine.AddDirective() }

func main() { coremain.Run() }
