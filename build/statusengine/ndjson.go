package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/schemaconf"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

func runExport(e *env, args []string) error {
	fs := newFlags(e, "export")
	dbPath := fs.String("db", "", "statusengine database file, when no server runs on it")
	apiURL := fs.String("api", "", "base URL of a running server's API, e.g. http://localhost:8053")
	tokenF := tokenFlag(fs)
	fromS := fs.String("from", "", "first receive time (default: the beginning)")
	toS := fs.String("to", "", "last receive time (default: now and later)")
	format := fs.String("format", "ndjson", "ndjson or csv")
	out := fs.String("out", "-", "output file, - for standard output")
	pos, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usageError(fs, "unexpected argument %q", pos[0])
	case (*dbPath == "") == (*apiURL == ""):
		return usageError(fs, "give exactly one of --db and --api")
	case *format != "ndjson" && *format != "csv":
		return usageError(fs, "--format: %q is neither ndjson nor csv", *format)
	}
	from, to := time.Unix(1, 0), time.Unix(1<<33-1, 0)
	if *fromS != "" {
		if from, err = parseTime(*fromS, false); err != nil {
			return usageError(fs, "--from: %v", err)
		}
	}
	if *toS != "" {
		if to, err = parseTime(*toS, true); err != nil {
			return usageError(fs, "--to: %v", err)
		}
	}
	if to.Before(from) {
		return usageError(fs, "--to is before --from")
	}
	if *apiURL != "" {
		return exportAPI(e, *apiURL, token(*tokenF), *format, from, to, *out)
	}
	st, err := openDB(*dbPath, true)
	if err != nil {
		return err
	}
	defer st.Close()
	return writeOutput(e, *out, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<16)
		var n int
		var err error
		if *format == "csv" {
			n, err = st.ExportCSV(bw, from, to)
		} else {
			n, err = st.Export(bw, from, to)
		}
		if err == nil {
			err = bw.Flush()
		}
		if err == nil {
			fmt.Fprintf(e.stderr, "exported %d records\n", n)
		}
		return err
	})
}

// exportURL is the API's export of [from, to] (whole seconds, inclusive).
func exportURL(base, format string, from, to time.Time) string {
	q := url.Values{}
	q.Set("format", format)
	q.Set("from", strconv.FormatInt(from.Unix(), 10))
	q.Set("to", strconv.FormatInt(to.Unix(), 10))
	return strings.TrimSuffix(base, "/") + "/api/v1/export?" + q.Encode()
}

// exportAPI streams a running server's GET /api/v1/export to out. Its NDJSON
// is the API's report layout (import reads it too), its CSV the API's.
func exportAPI(e *env, base, token, format string, from, to time.Time, out string) error {
	resp, err := apiGet(exportURL(base, format, from, to), token)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return writeOutput(e, out, func(w io.Writer) error {
		n, err := io.Copy(w, resp.Body)
		if err == nil {
			fmt.Fprintf(e.stderr, "exported %d bytes from %s\n", n, base)
		}
		return err
	})
}

// parseTime reads unix seconds, RFC 3339 or a UTC date; a date as --to
// means its end.
func parseTime(s string, end bool) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n < 1<<33 {
		return time.Unix(n, 0), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			t = t.Add(24*time.Hour - time.Nanosecond)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not unix seconds, RFC 3339 or YYYY-MM-DD", s)
}

// writeOutput runs write on standard output or on a temporary file renamed
// to path once complete and synced, so a failed run leaves no torn file.
func writeOutput(e *env, path string, write func(io.Writer) error) error {
	if path == "-" {
		return write(e.stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func runImport(e *env, args []string) error {
	fs := newFlags(e, "import")
	dbPath := fs.String("db", "", "statusengine database file (created if missing)")
	apiURL := fs.String("api", "", "store into a running server through its API (base URL) instead of --db")
	tokenF := tokenFlag(fs)
	srcToken := fs.String("source-token", "", "API token of URL inputs (default --token)")
	corefile := fs.String("corefile", "", "with --db: keep the schemas of --zone's zones from this Corefile in the database")
	zones := fs.String("zone", "", "with --corefile: the zones whose schemas to keep, comma-separated")
	inputs, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	if (*dbPath == "") == (*apiURL == "") {
		return usageError(fs, "give exactly one of --db and --api")
	}
	if (*corefile == "") != (*zones == "") || (*corefile != "" && *dbPath == "") {
		return usageError(fs, "--corefile and --zone go together, with --db")
	}
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	tok := token(*tokenF)
	if *srcToken == "" {
		*srcToken = tok
	}
	if *apiURL != "" {
		return importAPI(e, *apiURL, tok, *srcToken, inputs)
	}
	st, err := openDB(*dbPath, false)
	if err != nil {
		return err
	}
	defer st.Close()
	if *corefile != "" {
		for _, z := range strings.Split(*zones, ",") {
			s, err := schemaconf.FromCorefile(*corefile, z)
			if err != nil {
				return fmt.Errorf("--corefile: %v", err)
			}
			if err := st.SetSchema([]string{dns.CanonicalName(z)}, s); err != nil {
				return err
			}
		}
	}

	var total store.ImportStats
	shown := 0
	for _, name := range inputs {
		in, err := openNDJSON(e, name, *srcToken)
		if err != nil {
			printStats(e, total)
			return err
		}
		stats, err := st.ImportNDJSON(in, func(line int, err error) {
			if shown++; shown <= maxRejectShown {
				fmt.Fprintf(e.stderr, "%s:%d: rejected: %v\n", name, line, err)
			}
		})
		in.Close()
		total.Imported += stats.Imported
		total.Duplicate += stats.Duplicate
		total.Rejected += stats.Rejected
		if err != nil {
			printStats(e, total)
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: %w", err, errCut)
			}
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if shown > maxRejectShown {
		fmt.Fprintf(e.stderr, "... %d more rejected lines\n", shown-maxRejectShown)
	}
	printStats(e, total)
	return rejectedError(total)
}

// rejectedError makes an import that rejected any line fail (exit 1), after
// the counts were printed: the data was not taken in whole.
func rejectedError(total store.ImportStats) error {
	if total.Rejected > 0 {
		return fmt.Errorf("%d lines rejected", total.Rejected)
	}
	return nil
}

// openNDJSON opens a file, "-" or an http(s) URL.
func openNDJSON(e *env, name, token string) (io.ReadCloser, error) {
	if !strings.HasPrefix(name, "http://") && !strings.HasPrefix(name, "https://") {
		in, _, _, err := openInput(e, name)
		return in, err
	}
	resp, err := apiGet(name, token)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// apiGet fetches url with the token, turning an error answer into an error.
func apiGet(url, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(contextWithSignals(), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		msg := strings.TrimSpace(string(b))
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (give --token)"
		}
		return nil, errors.New(url + ": " + resp.Status + ": " + msg)
	}
	return resp, nil
}
