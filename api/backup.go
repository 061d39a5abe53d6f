package api

import (
	"net/http"
	"strconv"
	"time"
)

// backupPath streams a consistent copy of the database; the operator tool's
// "statusengine backup --api URL" reads it.
const backupPath = "GET /api/v1/backup"

// backup streams a consistent copy of the bbolt file from one read
// transaction (bbolt's Tx.WriteTo) while the server goes on storing reports.
// The copy opens like the original. It is raw data: behind the token.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	st := s.storeOf(r)
	defer s.track(st, w)()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="statusengine-`+time.Now().UTC().Format("20060102T150405Z")+`.db"`)
	h.Set("Cache-Control", "no-store")
	// The write deadline follows the copy's progress (see progressWriter):
	// a big file gets its time, a stalled or too slow client is cut.
	_, err := st.Backup(w, func(size int64) { h.Set("Content-Length", strconv.FormatInt(size, 10)) })
	if err != nil {
		// Headers are gone: cut the connection so the client sees a short body.
		streamsCut.Inc()
		panic(http.ErrAbortHandler)
	}
}
