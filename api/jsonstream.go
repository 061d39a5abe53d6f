package api

import (
	"bufio"
	"encoding/json"
	"net/http"
)

// jsonStream writes a JSON answer whose rows go out as they are read,
// through a small buffer, so that no answer is held whole in memory. Once
// the first byte is out the status is 200: a failure after that aborts the
// chunked body (abort), so the client sees a truncated answer, never a
// clean end of a partial one.
type jsonStream struct {
	bw   *bufio.Writer
	enc  *json.Encoder
	rows int
	err  error
}

func newJSONStream(w http.ResponseWriter) *jsonStream {
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &jsonStream{bw: bw, enc: enc}
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

// abort cuts the answer: the handler's panic makes net/http drop the
// connection without the chunked body's end.
func (j *jsonStream) abort() {
	streamsCut.Inc()
	panic(http.ErrAbortHandler)
}
