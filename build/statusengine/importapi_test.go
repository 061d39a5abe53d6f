package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/statusengine/statusengine/api/apitypes"
)

// fakeImport answers POST /api/v1/import like the server, counting the lines
// of each part; it answers 503 to the first attempt of every part listed in
// busy.
type fakeImport struct {
	mu    sync.Mutex
	parts []int // lines per accepted part
	posts int
	busy  map[int]bool // part index -> answer 503 once
}

func (f *fakeImport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts++
	if i := len(f.parts); f.busy[i] {
		delete(f.busy, i)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"busy"}`)
		return
	}
	var res apitypes.ImportResult
	sc := bufio.NewScanner(r.Body)
	n := 0
	for sc.Scan() {
		n++
		if strings.Contains(sc.Text(), "bad") {
			res.Rejected++
			res.Reject(n, errors.New("not a record"))
		} else {
			res.Imported++
		}
	}
	f.parts = append(f.parts, n)
	json.NewEncoder(w).Encode(res)
}

func TestImportAPIInParts(t *testing.T) {
	tests := []struct {
		name      string
		lines     int
		busy      map[int]bool
		wantParts []int
		wantPosts int
	}{
		{"small", 10, nil, []int{10}, 1},
		{"exactly one part", partLines, nil, []int{partLines}, 1},
		{"three parts, the second busy once", 2*partLines + 1, map[int]bool{1: true}, []int{partLines, partLines, 1}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeImport{busy: tc.busy}
			srv := httptest.NewServer(f)
			defer srv.Close()
			var in strings.Builder
			for i := range tc.lines {
				if i == tc.lines-1 {
					in.WriteString("bad line\n") // the last line is rejected
				} else {
					fmt.Fprintf(&in, `{"n":%d}`+"\n", i)
				}
			}
			code, out, errs := cli(t, in.String(), "import", "--api", srv.URL, "-")
			want := fmt.Sprintf("imported %d, duplicate 0, rejected 1", tc.lines-1)
			// A rejected line makes the import fail (exit 1), after the counts.
			if code != 1 || !strings.Contains(out+errs, want) {
				t.Fatalf("exit %d, %q %q, want %q", code, out, errs, want)
			}
			if wantErr := fmt.Sprintf("-:%d: rejected: not a record", tc.lines); !strings.Contains(errs, wantErr) {
				t.Errorf("stderr %q does not name the input's line: %q", errs, wantErr)
			}
			if fmt.Sprint(f.parts) != fmt.Sprint(tc.wantParts) || f.posts != tc.wantPosts {
				t.Errorf("parts %v in %d posts, want %v in %d", f.parts, f.posts, tc.wantParts, tc.wantPosts)
			}
		})
	}
}

// TestRejectedLines: the rejected lines of a part's answer are said with
// the input's line numbers, read from rejections; the errors of a server
// from before them are said as they are, never parsed.
func TestRejectedLines(t *testing.T) {
	tests := []struct {
		name  string
		res   apitypes.ImportResult
		first int
		want  []string
	}{
		{"none", apitypes.ImportResult{Imported: 3}, 1, []string{}},
		{"first part", apitypes.ImportResult{
			Errors:     []string{"line 2: not a record"},
			Rejections: []apitypes.Rejection{{Line: 2, Error: "not a record"}},
		}, 1, []string{"2: rejected: not a record"}},
		{"a later part", apitypes.ImportResult{
			Errors:     []string{"line 1: a", "line 7: b: c"},
			Rejections: []apitypes.Rejection{{Line: 1, Error: "a"}, {Line: 7, Error: "b: c"}},
		}, 50001, []string{"50001: rejected: a", "50007: rejected: b: c"}},
		{"an older server", apitypes.ImportResult{Errors: []string{"line 3: not a record"}}, 50001,
			[]string{" rejected, in the part from line 50001: line 3: not a record"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rejectedLines(tc.res, tc.first); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("rejectedLines(%+v, %d) = %q, want %q", tc.res, tc.first, got, tc.want)
			}
		})
	}
}

// cutReader ends with io.ErrUnexpectedEOF, as the body of an export the
// server aborted does.
type cutReader struct{ r io.Reader }

func (c cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func TestImportAPIReportsCutSource(t *testing.T) {
	f := &fakeImport{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var sent int
	err := sendParts(srv.URL, "", cutReader{strings.NewReader("{}\n{}\n{}\n{\"trunc")}, func(res apitypes.ImportResult, first int) { sent += res.Imported })
	if err == nil || !strings.Contains(err.Error(), "ended in the middle") {
		t.Errorf("error %v, want one saying the input was cut", err)
	}
	// The complete lines before the cut went in.
	if sent != 3 {
		t.Errorf("%d lines sent before the cut", sent)
	}
}

func TestProgressUnknownSize(t *testing.T) {
	var errb bytes.Buffer
	e := &env{stderr: &errb, tty: true}
	p := newProgress(e, "-", 0)
	p.set(3 << 20)
	p.set(5 << 20) // within 100 ms: not drawn
	p.done()
	if s := errb.String(); s != "\r- 3 MiB\r- 5 MiB\n" {
		t.Errorf("progress output %q", s)
	}
}
