package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/tinydns"
)

// maxRejectShown bounds the rejected lines printed; the count has them all.
const maxRejectShown = 10

func runImportTinydns(e *env, args []string) error {
	fs := newFlags(e, "import-tinydns")
	dbPath := fs.String("db", "", "statusengine database file (created if missing)")
	var zones multiFlag
	fs.Var(&zones, "zone", "status zone of the log, repeatable (default status.modsecurity.org)")
	quiet := fs.Bool("quiet", false, "do not list rejected lines")
	geoip := fs.String("geoip", "", "MaxMind/DB-IP City or Country .mmdb to locate resolvers (default: the embedded country database)")
	noGeo := fs.Bool("no-geo", false, "store no location")
	logs, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	if *dbPath == "" {
		return usageError(fs, "--db is required")
	}
	if len(logs) == 0 {
		return usageError(fs, "want at least one LOG (- for standard input)")
	}
	var locate func(netip.Addr, netip.Prefix) geo.Location
	if !*noGeo {
		l, err := openLocator(*geoip)
		if err != nil {
			return err
		}
		defer l.Close()
		locate = l.Locate
	}
	st, err := openDB(*dbPath, false)
	if err != nil {
		return err
	}
	defer st.Close()

	var total tinydns.Stats
	shown := 0
	for _, name := range logs {
		in, size, mtime, err := openInput(e, name)
		if err != nil {
			return err
		}
		opts := tinydns.Options{Zones: zones, Fallback: mtime, Locate: locate}
		if !*quiet {
			opts.Reject = func(line int, text string, err error) {
				if shown++; shown <= maxRejectShown {
					fmt.Fprintf(e.stderr, "%s:%d: rejected: %v: %.120s\n", name, line, err, text)
				}
			}
		}
		bar := newProgress(e, name, size)
		opts.Progress = bar.set
		stats, err := tinydns.Import(st, in, opts)
		bar.done()
		in.Close()
		total.Imported += stats.Imported
		total.Duplicate += stats.Duplicate
		total.Rejected += stats.Rejected
		total.Ignored += stats.Ignored
		if err != nil {
			printTinydnsStats(e, total)
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if shown > maxRejectShown {
		fmt.Fprintf(e.stderr, "... %d more rejected lines\n", shown-maxRejectShown)
	}
	printTinydnsStats(e, total)
	return nil
}

func printTinydnsStats(e *env, s tinydns.Stats) {
	fmt.Fprintf(e.stdout, "imported %d, duplicate %d, rejected %d, ignored %d\n", s.Imported, s.Duplicate, s.Rejected, s.Ignored)
}

func printStats(e *env, s store.ImportStats) {
	fmt.Fprintf(e.stdout, "imported %d, duplicate %d, rejected %d\n", s.Imported, s.Duplicate, s.Rejected)
}

// openLocator opens path, or the embedded country database for "".
func openLocator(path string) (*geo.Locator, error) {
	if path == "" {
		return geo.Default()
	}
	return geo.Open(path)
}

// openInput opens a file or "-" for standard input, with its size (0 when
// unknown) and modification time (now for standard input).
func openInput(e *env, name string) (io.ReadCloser, int64, time.Time, error) {
	if name == "-" {
		return io.NopCloser(e.stdin), 0, time.Now(), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, time.Time{}, err
	}
	return f, info.Size(), info.ModTime(), nil
}
