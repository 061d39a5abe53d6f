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
	st := s.store.Load()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="statusengine-`+time.Now().UTC().Format("20060102T150405Z")+`.db"`)
	h.Set("Cache-Control", "no-store")
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w)}
	_, err := st.Backup(dw, func(size int64) { h.Set("Content-Length", strconv.FormatInt(size, 10)) })
	if err != nil {
		// Headers are gone: cut the connection so the client sees a short body.
		panic(http.ErrAbortHandler)
	}
}

// deadlineWriter moves the write deadline on as a large copy goes out, so
// a server WriteTimeout bounds a stalled client, not a big file.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	n  int64
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.n == 0 || d.n>>20 != (d.n+int64(len(p)))>>20 {
		d.rc.SetWriteDeadline(time.Now().Add(time.Minute))
	}
	n, err := d.w.Write(p)
	d.n += int64(n)
	return n, err
}
