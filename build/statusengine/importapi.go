package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/statusengine/statusengine/api/apitypes"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// An import through the API goes in parts: each POST carries at most
// partLines lines and partBytes bytes, so that no request runs long and a
// busy server (503) costs the retry of one part only.
const (
	partLines = 50000
	partBytes = 32 << 20
	// maxLineBytes bounds one line, its newline not counted: the server's
	// limit, so that a part the command sends is never refused for it.
	maxLineBytes = store.MaxLine
	// A part is retried this many times on 503, waiting as Retry-After
	// says (at most maxRetryWait), and on a connection error.
	busyRetries  = 20
	connRetries  = 3
	maxRetryWait = time.Minute
)

// errCut explains a source that ended in the middle: an export stream the
// server aborted (a reload, a store error) ends that way, never cleanly.
var errCut = errors.New("the input ended in the middle (an export the server cut before its end?)")

// importAPI sends each input to a running server's import endpoint, in parts.
func importAPI(e *env, base, token, srcToken string, inputs []string) error {
	url := strings.TrimSuffix(base, "/") + "/api/v1/import"
	var total store.ImportStats
	shown := 0
	for _, name := range inputs {
		in, size, err := openNDJSONSized(e, name, srcToken)
		if err != nil {
			printStats(e, total)
			return err
		}
		bar := newProgress(e, name, size)
		err = sendParts(url, token, &countingReader{r: in, progress: bar}, func(res apitypes.ImportResult, first int) {
			total.Imported += res.Imported
			total.Duplicate += res.Duplicate
			total.Rejected += res.Rejected
			for _, msg := range rejectedLines(res, first) {
				if shown++; shown <= maxRejectShown {
					fmt.Fprintf(e.stderr, "%s:%s\n", name, msg)
				}
			}
		})
		bar.done()
		in.Close()
		if err != nil {
			printStats(e, total)
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if shown > maxRejectShown {
		fmt.Fprintf(e.stderr, "... %d more rejected lines\n", shown-maxRejectShown)
	}
	printStats(e, total)
	return rejectedError(total)
}

// sendParts reads NDJSON lines from in and posts them in parts; done is told
// each part's answer and the input line number the part starts at.
func sendParts(url, token string, in io.Reader, done func(res apitypes.ImportResult, first int)) error {
	br := bufio.NewReaderSize(in, maxLineBytes+1) // the line and its newline
	var part bytes.Buffer
	line, first, n := 0, 1, 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		res, err := postPart(url, token, part.Bytes())
		done(res, first)
		part.Reset()
		first, n = line+1, 0
		return err
	}
	for {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("line %d: %w", line+1, store.ErrLineTooLong)
		}
		// A line is complete with its newline, or at the clean end of the
		// input; a line cut by a read error is left out.
		if len(b) > 0 && (err == nil || err == io.EOF) {
			line++
			part.Write(bytes.TrimRight(b, "\n"))
			part.WriteByte('\n')
			if n++; n >= partLines || part.Len() >= partBytes {
				if ferr := flush(); ferr != nil {
					return ferr
				}
			}
		}
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			// What was read completely still goes in; the error is reported.
			if ferr := flush(); ferr != nil {
				return ferr
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = errCut
			}
			return fmt.Errorf("line %d: %w", line+1, err)
		}
	}
}

// postPart posts one part, retrying on 503 (as Retry-After says) and on
// connection errors: the import is idempotent, so a part sent twice stores
// nothing twice.
func postPart(url, token string, body []byte) (apitypes.ImportResult, error) {
	busy, conn := 0, 0
	for {
		res, retry, err := postOnce(url, token, body)
		switch {
		case err == nil:
			return res, nil
		case retry > 0 && busy < busyRetries:
			busy++
			time.Sleep(retry)
		case retry < 0 && conn < connRetries:
			conn++
			time.Sleep(time.Duration(conn) * time.Second)
		default:
			return res, err
		}
	}
}

// postOnce posts body once. retry is the wait a 503 asks for, or negative
// for a connection error worth another try.
func postOnce(url, token string, body []byte) (res apitypes.ImportResult, retry time.Duration, err error) {
	req, err := http.NewRequestWithContext(contextWithSignals(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return res, 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return res, 0, err // interrupted
		}
		return res, -1, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return res, retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("%s: %s: the server stayed busy", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res); err != nil {
		return res, 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		msg := res.Error
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (give --token)"
		}
		return res, 0, fmt.Errorf("%s: %s: %s", url, resp.Status, msg)
	}
	return res, 0, nil
}

// retryAfter reads a Retry-After in seconds: at least a second, at most
// maxRetryWait.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		n = 1
	}
	return min(time.Duration(n)*time.Second, maxRetryWait)
}

// rejectedLines says the rejected lines of a part's answer, each after the
// input's name: "N: rejected: why", N the input's line (the part starts at
// its line first). A server from before the answer's rejections names its
// lines in errors only, as text about the part: said as it is, with where
// the part starts.
func rejectedLines(res apitypes.ImportResult, first int) []string {
	out := make([]string, 0, max(len(res.Rejections), len(res.Errors)))
	for _, r := range res.Rejections {
		out = append(out, fmt.Sprintf("%d: rejected: %s", first+r.Line-1, r.Error))
	}
	if len(res.Rejections) == 0 {
		for _, msg := range res.Errors {
			out = append(out, fmt.Sprintf(" rejected, in the part from line %d: %s", first, msg))
		}
	}
	return out
}

// openNDJSONSized opens a file, "-" or an http(s) URL, with its size when
// known (0 otherwise), for the progress bar.
func openNDJSONSized(e *env, name, token string) (io.ReadCloser, int64, error) {
	if !strings.HasPrefix(name, "http://") && !strings.HasPrefix(name, "https://") {
		in, size, _, err := openInput(e, name)
		return in, size, err
	}
	resp, err := apiGet(name, token)
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, max(resp.ContentLength, 0), nil
}

// countingReader tells a progress bar how much was read.
type countingReader struct {
	r        io.Reader
	n        int64
	progress *progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.progress.set(c.n)
	return n, err
}
