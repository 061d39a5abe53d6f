package api

import (
	"bufio"
	"net/http"
	"strconv"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := timeRange(q, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	format, err := oneOf(q, "format", "ndjson", "ndjson", "csv")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f, err := parseFilter(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h := w.Header()
	name := "statusengine-" + strconv.FormatInt(from.Unix(), 10) + "-" + strconv.FormatInt(to.Unix(), 10)
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	} else {
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.ndjson"`)
	}
	// Records go out as they are read, through a small buffer: an export of
	// years holds one record in memory at a time.
	bw := bufio.NewWriterSize(w, 32<<10)
	// The store's writers: the export by the CLI is byte for byte the same.
	write := record.NewNDJSONWriter(bw).Write
	if format == "csv" {
		cw, _ := record.NewCSVWriter(bw) // an error stays in bw, and Flush returns it
		write = cw.Write
	}
	// Each writes between read transactions: a slow client must not hold one.
	// The write deadline follows the export's progress (see progressWriter).
	st := s.storeOf(r)
	defer s.track(st, w)()
	err = st.Each(from, endOf(to), 0, func(rec *record.Record) error {
		if !f.match(rec) {
			return nil
		}
		return write(rec) // an error: the client went away or was too slow
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// The store failed or closed (a reload onto another db), or the
		// client is gone: abort the chunked body, so that the client sees a
		// truncated answer, never a clean end of a partial export.
		streamsCut.Inc()
		panic(http.ErrAbortHandler)
	}
}
