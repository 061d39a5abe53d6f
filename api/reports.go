package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/statusengine/statusengine/api/apitypes"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// Limits of /api/v1/reports.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// errEnough stops a scan that has what it needs.
var errEnough = errors.New("enough")

// filter is the record filter of reports and export.
type filter struct {
	modsec, server, country, id string
	zone                        string // with its final dot, lower case
}

// parseFilter reads the filter of q; a filter given twice is an error
// (which of the two would hold?).
func parseFilter(q url.Values) (filter, error) {
	if err := once(q, "modsec", "server", "country", "id", "zone"); err != nil {
		return filter{}, err
	}
	f := filter{modsec: q.Get("modsec"), server: q.Get("server"), country: q.Get("country"), id: q.Get("id")}
	if z := strings.ToLower(q.Get("zone")); z != "" {
		if !strings.HasSuffix(z, ".") {
			z += "."
		}
		f.zone = z
	}
	return f, nil
}

// filtered tells whether r asks for a filter: such a page may scan the whole
// range for its rows, so it counts as an expensive request.
func filtered(r *http.Request) bool {
	f, _ := parseFilter(r.URL.Query()) // an error is answered before any scan
	return f != filter{}
}

// match: server matches the whole signature, its product/version or its
// platform, so "Apache", "Apache/2.4.71" and "Apache/2.4.71 (Debian)" all work.
func (f filter) match(rec *record.Record) bool {
	rep := &rec.Report
	if f.modsec != "" && rep.Modsec != f.modsec {
		return false
	}
	if f.server != "" && rep.Server != f.server && rollup.ServerVersion(rep.Server) != f.server && rollup.Platform(rep.Server) != f.server {
		return false
	}
	if f.country != "" && rec.Geo.Country != f.country {
		return false
	}
	if f.id != "" && rep.ID != f.id {
		return false
	}
	if f.zone != "" && rec.Zone != f.zone {
		return false
	}
	return true
}

// ScanBudget bounds the records one /api/v1/reports page reads: a filter
// that matches little would otherwise read the whole range for one page.
// Past it the page ends with what it found (maybe nothing) and a
// next_cursor to go on from.
const ScanBudget = 100000

// scanBudget is ScanBudget; tests lower it.
var scanBudget = ScanBudget

// reports answers /api/v1/reports with an apitypes.ReportsPage, written row
// by row.
func (s *Server) reports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := timeRange(q, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := intParam(q, "limit", DefaultLimit, 1, MaxLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	after, err := cursorParam(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f, err := parseFilter(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := s.storeOf(r)
	defer s.track(st, w)()
	out := newJSONStream(w)
	out.raw(apitypes.ReportsPageHead)
	var (
		last    uint64 // the last key read
		scanned int
		more    bool
	)
	err = st.Each(from, endOf(to), after, func(rec *record.Record) error {
		if out.rows == limit || scanned == scanBudget {
			more = true
			return errEnough
		}
		scanned++
		last = rec.Key
		if !f.match(rec) {
			return nil
		}
		return out.row(rec.Wire())
	})
	if err == errEnough {
		err = nil
	}
	if err == nil {
		var next *string
		if more {
			cursor := record.KeyString(last)
			next = &cursor
		}
		err = out.end(apitypes.ReportsPageTail(next))
	}
	if err != nil {
		out.abort(err)
	}
}
