package statusengine

import (
	"os"
	"sync"

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
