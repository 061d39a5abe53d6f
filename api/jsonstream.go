package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// jsonStream writes a JSON answer whose rows go out as they are read,
// through a small buffer, so that no answer is held whole in memory. Once
// the first byte is out the status is 200: a failure after that aborts the
// chunked body (abort), so the client sees a truncated answer, never a
// clean end of a partial one. A failure before it gets a status and a JSON
// error instead (a store that is down: 503).
type jsonStream struct {
	w    http.ResponseWriter
	out  *sentWriter
	bw   *bufio.Writer
	enc  *json.Encoder
	rows int
	err  error
}

// sentWriter tells whether a byte went to the client.
type sentWriter struct {
	w    http.ResponseWriter
	sent bool
}

func (s *sentWriter) Write(b []byte) (int, error) {
	s.sent = s.sent || len(b) > 0
	return s.w.Write(b)
}

func newJSONStream(w http.ResponseWriter) *jsonStream {
	w.Header().Set("Content-Type", "application/json")
	out := &sentWriter{w: w}
	bw := bufio.NewWriterSize(out, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &jsonStream{w: w, out: out, bw: bw, enc: enc}
}

// raw writes s as it is.
func (j *jsonStream) raw(s string) {
	if j.err == nil {
		_, j.err = j.bw.WriteString(s)
	}
}

// value writes one JSON value (the encoder ends it with a newline: white
// space, valid between tokens).
func (j *jsonStream) value(v any) {
	if j.err == nil {
		j.err = j.enc.Encode(v)
	}
}

// row writes one element of the array under way.
func (j *jsonStream) row(v any) error {
	if j.rows > 0 {
		j.raw(",")
	}
	j.value(v)
	j.rows++
	return j.err
}

// end writes s and flushes.
func (j *jsonStream) end(s string) error {
	j.raw(s)
	if j.err == nil {
		j.err = j.bw.Flush()
	}
	return j.err
}

// abort ends an answer that failed with err: when nothing of it reached
// the client, with a status and a JSON error (storeError); else it cuts
// the answer: the handler's panic makes net/http drop the connection
// without the chunked body's end.
func (j *jsonStream) abort(err error) {
	if !j.out.sent {
		storeError(j.w, err)
		return
	}
	streamsCut.Inc()
	panic(http.ErrAbortHandler)
}

// storeError answers a request whose read of the store failed with err: a
// store that is down (a damaged file) 503, with the error, which names the
// file and the check and salvage commands; else 500.
func storeError(w http.ResponseWriter, err error) {
	var damaged *store.DamagedError
	if errors.As(err, &damaged) || errors.Is(err, store.ErrDown) {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, "reading the store failed")
}
