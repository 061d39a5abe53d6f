// Command cold times the first answer of every public API endpoint over a
// year, each on the database opened anew by a fresh API server, so that
// nothing the store or the API keeps in memory (the sums of closed days,
// the steps, the answers) is warm: what the first visitor after a restart
// waits for. The file's pages may be in the page cache (bbolt maps the
// file; a server that ran a while has them there too). It prints one JSON
// object, for bench/run.
//
//	go run ./bench/cold -db out/big20m.db
//	go run ./bench/cold -db out/big20m.db -only adoption -cpuprofile cpu.prof
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/statusengine/statusengine/api"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// endpoints are the public ones, over the year before now (%[1]d: its
// start, %[2]d: its end, %[3]d: an hour before its end), with the
// parameters the status page asks for.
var endpoints = []struct{ name, path string }{
	{"summary", "/api/v1/summary?from=%[1]d&to=%[2]d"},
	{"timeseries", "/api/v1/timeseries?from=%[1]d&to=%[2]d&step=day&by=modsec"},
	{"timeseries_installations_country", "/api/v1/timeseries?from=%[1]d&to=%[2]d&step=day&by=country&count=installations"},
	{"timeseries_installations_modsec_week", "/api/v1/timeseries?from=%[1]d&to=%[2]d&step=week&by=modsec&count=installations"},
	{"map", "/api/v1/map?from=%[1]d&to=%[2]d"},
	{"adoption", "/api/v1/adoption?from=%[1]d&to=%[2]d"},
	{"churn", "/api/v1/churn?from=%[1]d&to=%[2]d&step=week"},
	{"exposure", "/api/v1/exposure?from=%[1]d&to=%[2]d&step=week"},
	{"badge_latest", "/badge/latest.svg"},
	{"badge_exposed", "/badge/exposed.svg"},
	{"zones", "/api/v1/zones"},
	{"daily_list", "/api/v1/public/daily"},
	{"reports", "/api/v1/reports?from=%[1]d&to=%[2]d&limit=1000"},
	// The original-compatible API returns rows, at most api.MaxRows (a
	// year of 20,000,000 is a 400 by design), in time with their number:
	// its last hour.
	{"compat_hour", "/api/%[3]d/%[2]d"},
}

// Result is the time of one endpoint's first answer.
type Result struct {
	Name   string  `json:"name"`
	Path   string  `json:"path"`
	Status int     `json:"status"`
	Bytes  int     `json:"bytes"`
	Ms     float64 `json:"ms"`
	OpenMs float64 `json:"open_ms"`
}

func main() {
	db := flag.String("db", "", "database file (bench/fill)")
	only := flag.String("only", "", "only the endpoints whose name contains this")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the requests (not the opens) to this file")
	flag.Parse()
	if *db == "" {
		fail(fmt.Errorf("-db is required"))
	}
	var prof *os.File
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		prof = f
	}
	now := time.Now()
	from, to := now.Add(-365*24*time.Hour).Unix(), now.Unix()
	var out []Result
	for _, e := range endpoints {
		if !strings.Contains(e.name, *only) {
			continue
		}
		path := e.path
		if strings.Contains(path, "%") {
			path = fmt.Sprintf(path, from, to, to-3600)
		}
		start := time.Now()
		st, err := store.Open(*db, store.Options{})
		if err != nil {
			fail(err)
		}
		opened := time.Since(start)
		s := api.New()
		s.SetStore(st)
		req := httptest.NewRequest("GET", path, nil)
		w := httptest.NewRecorder()
		if prof != nil {
			pprof.StartCPUProfile(prof)
		}
		start = time.Now()
		s.ServeHTTP(w, req)
		took := time.Since(start)
		if prof != nil {
			pprof.StopCPUProfile()
			prof = nil // one profile: the first endpoint asked for
		}
		out = append(out, Result{Name: e.name, Path: path, Status: w.Code, Bytes: w.Body.Len(),
			Ms: float64(took.Microseconds()) / 1000, OpenMs: float64(opened.Microseconds()) / 1000})
		if err := st.Close(); err != nil {
			fail(err)
		}
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cold:", err)
	os.Exit(1)
}
