package statusengine

import (
	"os"
	"strings"
	"sync"

	"github.com/coredns/caddy"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
)

// Locators are process-wide and never closed: a reload's old instance may
// still be answering (and looking up, in a mapped file) while the new one
// starts. Reopening the same unchanged file returns the same Locator.
var (
	locMu      sync.Mutex
	locators   = map[string]cachedLocator{}
	defaultLoc *geo.Locator
)

type cachedLocator struct {
	loc  *geo.Locator
	info os.FileInfo
}

// openLocator opens the database at path, or returns the one already open
// when the file has not changed since.
func openLocator(path string) (*geo.Locator, error) {
	locMu.Lock()
	defer locMu.Unlock()
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if c, ok := locators[path]; ok && c.info.ModTime().Equal(info.ModTime()) && c.info.Size() == info.Size() {
		return c.loc, nil
	}
	loc, err := geo.Open(path)
	if err != nil {
		return nil, err
	}
	locators[path] = cachedLocator{loc, info}
	return loc, nil
}

// defaultLocator is the embedded country database, opened once.
func defaultLocator() (*geo.Locator, error) {
	locMu.Lock()
	defer locMu.Unlock()
	if defaultLoc == nil {
		loc, err := geo.Default()
		if err != nil {
			return nil, err
		}
		defaultLoc = loc
	}
	return defaultLoc, nil
}

// parseAPIBlock reads the optional block of the api property:
//
//	api ADDR {
//	    token TOKEN | token_file FILE
//	}
func parseAPIBlock(c *caddy.Controller, cfg *apiConfig) error {
	// The dispenser's NextBlock cannot tell a nested block from the next
	// property of the enclosing one, so walk the braces by hand.
	if !c.NextArg() {
		return nil
	}
	if c.Val() != "{" {
		return c.Errf("api: unexpected %q", c.Val())
	}
	for c.Next() {
		property := c.Val()
		if property == "}" {
			return nil
		}
		args := c.RemainingArgs()
		if cfg.token != "" {
			return c.Errf("api: only one of token and token_file, once")
		}
		switch property {
		case "token":
			if len(args) != 1 || args[0] == "" {
				return c.Errf("api: token needs one value")
			}
			cfg.token = args[0]
		case "token_file":
			if len(args) != 1 || args[0] == "" {
				return c.Errf("api: token_file needs one file name")
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return c.Errf("api: token_file: %v", err)
			}
			tok := strings.TrimSpace(string(b))
			if tok == "" {
				return c.Errf("api: token_file %q is empty", args[0])
			}
			cfg.token = tok
		default:
			return c.Errf("api: unknown property %q", property)
		}
	}
	return c.Errf("api: block is not closed")
}
