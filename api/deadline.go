package api

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Connection timeouts of the side listener that no reload changes: they are
// the http.Server's own (see NewHTTPServer).
const (
	// ReadHeaderTimeout bounds the time to send a request's headers.
	ReadHeaderTimeout = 5 * time.Second
	// IdleTimeout closes a kept-alive connection that sends no new request.
	IdleTimeout = 30 * time.Second
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 16 << 10
)

// progressStep is how often, in bytes, a deadline is moved on.
const progressStep = 64 << 10

// NewHTTPServer returns the http.Server for a side listener serving h. Its
// read and write timeouts are the defaults, which each request replaces
// with its configuration's (so that a reload changes them at once).
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// pace is the deadline rule of one request: timeout, plus a second for
// every rate bytes moved.
type pace struct {
	start   time.Time
	timeout time.Duration
	rate    int64
}

func (p pace) deadline(n int64) time.Time {
	return p.start.Add(p.timeout + time.Duration(float64(n)/float64(p.rate)*float64(time.Second)))
}

// progressWriter moves the connection's write deadline on as an answer goes
// out, by its pace: a client that stops reading is cut at WriteTimeout, and
// one that reads slower than MinRate on average falls behind and is cut
// later, whatever the answer's size.
type progressWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	pace pace
	n    int64     // bytes written
	next int64     // the deadline is good until n reaches next
	min  time.Time // no deadline before this: the time an upload earned

	cutAt atomic.Bool // set by cut, from another goroutine
}

func (p *progressWriter) Write(b []byte) (int, error) {
	// A large write goes in steps, each with its own deadline: one Write of
	// a whole answer must not earn the time of all its bytes at once.
	written := 0
	for len(b) > 0 {
		if p.cutAt.Load() {
			return written, errCut
		}
		chunk := b[:min(len(b), progressStep)]
		if end := p.n + int64(len(chunk)); end > p.next {
			p.next = p.n + progressStep
			d := p.pace.deadline(p.next)
			if d.Before(p.min) {
				d = p.min
			}
			p.rc.SetWriteDeadline(d)
		}
		n, err := p.ResponseWriter.Write(chunk)
		p.n += int64(n)
		written += n
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// Flush sends what is buffered.
func (p *progressWriter) Flush() { p.rc.Flush() }

// Unwrap gives http.ResponseController the connection's writer.
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// progressReader moves the read deadline on as a request body arrives, by
// its pace, and the write deadline with it (the answer comes after the
// body): an upload of any size is accepted while it keeps MinRate.
type progressReader struct {
	io.ReadCloser
	w       *progressWriter
	pace    pace
	write   time.Duration // the answer's time after the body's deadline
	n, next int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	if end := p.n + int64(len(b)); end > p.next {
		p.next = end + progressStep
		d := p.pace.deadline(p.next)
		p.w.rc.SetReadDeadline(d)
		p.w.min = d.Add(p.write)
		p.w.rc.SetWriteDeadline(p.w.min)
	}
	n, err := p.ReadCloser.Read(b)
	p.n += int64(n)
	return n, err
}

// paced sets r's deadlines from its configuration and wraps w so the write
// deadline follows the answer's progress.
func paced(w http.ResponseWriter, r *http.Request, l *Limits) http.ResponseWriter {
	now := time.Now()
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(now.Add(l.ReadTimeout))
	rc.SetWriteDeadline(now.Add(l.WriteTimeout))
	return &progressWriter{ResponseWriter: w, rc: rc, pace: pace{start: now, timeout: l.WriteTimeout, rate: l.MinRate}}
}

// pacedBody lets r's body take as long as it keeps MinRate; w is the writer
// paced gave.
func pacedBody(w http.ResponseWriter, r *http.Request, l *Limits) {
	pw, ok := w.(*progressWriter)
	if !ok {
		return
	}
	r.Body = &progressReader{
		ReadCloser: r.Body,
		w:          pw,
		pace:       pace{start: time.Now(), timeout: l.ReadTimeout, rate: l.MinRate},
		write:      l.WriteTimeout,
	}
}
