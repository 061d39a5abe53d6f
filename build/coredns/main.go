// Command coredns is stock CoreDNS with the statusengine plugin added: every
// stock plugin stays, so it is a drop-in replacement for the stock binary.
// coredns -version names the statusengine build (version and commit) where
// stock CoreDNS names its own commit.
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // every stock plugin
	"github.com/coredns/coredns/coremain"

	"github.com/statusengine/statusengine/internal/version"
	"github.com/statusengine/statusengine/plugin/statusengine"
)

func init() {
	statusengine.AddDirective()
	coremain.GitCommit = version.Get().Short()
}

func main() { coremain.Run() }
