// Package version tells which build of statusengine is running, from what
// the Go toolchain stamps into every binary it builds from a checkout: the
// main module's version, the commit and whether the tree had uncommitted
// changes (debug.ReadBuildInfo, settings vcs.revision and vcs.modified).
// Binaries built without version control information (go test, go run, a
// tree without .git) say "unknown" rather than guess.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Unknown stands for information the binary does not carry.
const Unknown = "unknown"

// Info is the identity of a build.
type Info struct {
	Version  string // the main module's version: a tag, a pseudo-version or "(devel)"
	Revision string // the commit the binary was built from
	Time     string // the commit's time (RFC 3339)
	Modified bool   // the tree had uncommitted changes
	CoreDNS  string // the version of the CoreDNS module built in
	Go       string // the Go toolchain
}

// Get reads the running binary's build information.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok)
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	i := Info{Version: Unknown, Revision: Unknown, CoreDNS: Unknown, Go: runtime.Version()}
	if !ok || bi == nil {
		return i
	}
	if v := bi.Main.Version; v != "" {
		i.Version = v
	}
	i.Go = bi.GoVersion
	for _, d := range bi.Deps {
		if d.Path == "github.com/coredns/coredns" {
			i.CoreDNS = d.Version
			if d.Replace != nil {
				i.CoreDNS = d.Replace.Version
			}
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// Commit is the revision, shortened to 12 characters, with "-modified" when
// the tree had uncommitted changes.
func (i Info) Commit() string {
	c := i.Revision
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "-modified"
	}
	return c
}

// Short is one line: statusengine's version and commit.
func (i Info) Short() string {
	return "statusengine " + i.Version + " commit " + i.Commit()
}

// String is the multi-line description the version command prints.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "statusengine %s\n", i.Version)
	fmt.Fprintf(&b, "commit %s", i.Revision)
	if i.Modified {
		b.WriteString(" (modified)")
	}
	if i.Time != "" {
		fmt.Fprintf(&b, " of %s", i.Time)
	}
	fmt.Fprintf(&b, "\nCoreDNS %s, %s %s/%s\n", i.CoreDNS, i.Go, runtime.GOOS, runtime.GOARCH)
	return b.String()
}
