package reliability

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/internal/servertest"
)

// TestImportAPILarge (issue 10, point 6): statusengine import --api of a
// 1,000,000-line archive succeeds. It used to fail after 10 s (the server's
// read timeout) with a 500, after about 450,000 lines: the tool now sends
// parts of 50,000 lines, and the server accepts an upload for as long as it
// keeps coming at the minimum rate (shown by one POST of 400,000 lines).
func TestImportAPILarge(t *testing.T) {
	const lines = 1000000
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	s.start()

	cmd := exec.Command(toolBinary, "import", "--api", "http://"+s.cfg.API, "--token", apiToken, "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	p, err := servertest.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if !p.Exited() {
			p.Cmd.Process.Kill()
			<-p.Done()
		}
	}()
	// The archive, generated as it is read: one report a second from
	// 2025-01-01 on, each a distinct installation.
	go func() {
		w := bufio.NewWriterSize(stdin, 1<<20)
		t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range lines {
			if _, err := w.Write(fillLine(i, t0.Add(time.Duration(i)*time.Second))); err != nil {
				break
			}
		}
		w.Flush()
		stdin.Close()
	}()
	if !p.WaitExit(10 * time.Minute) {
		t.Fatalf("import still running after 10 min: %s", out.String())
	}
	took := time.Since(start)
	if p.Err() != nil || !strings.Contains(out.String(), "imported 1000000, duplicate 0, rejected 0") {
		t.Fatalf("import --api of %d lines: %v: %s", lines, p.Err(), out.String())
	}
	records := metricTotal(s.metricsText(), "coredns_statusengine_records")
	if records != lines {
		t.Errorf("the server holds %v records, want %d", records, lines)
	}
	t.Logf("import --api of %d lines: %v (%.0f lines/s), the server holds %v records: %s", lines, took.Round(time.Millisecond),
		float64(lines)/took.Seconds(), records, regexp.MustCompile(`\s+`).ReplaceAllString(strings.TrimSpace(out.String()), " "))

	// The server side alone: one POST far longer than the read timeout (10 s)
	// is accepted while its data keeps coming.
	const single = 400000
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 1<<20)
		t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
		for i := range single {
			if _, err := w.Write(fillLine(lines+i, t0.Add(time.Duration(i)*time.Second))); err != nil {
				break
			}
		}
		pw.CloseWithError(w.Flush())
	}()
	req, _ := http.NewRequest("POST", "http://"+s.cfg.API+"/api/v1/import", pr)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	start = time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("one POST of %d lines: %v", single, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took = time.Since(start)
	if resp.StatusCode != 200 || !strings.Contains(string(body), fmt.Sprintf(`"imported":%d,`, single)) {
		t.Fatalf("one POST of %d lines: %s after %v: %s", single, resp.Status, took, body)
	}
	t.Logf("one POST of %d lines: %s after %v: %s", single, resp.Status, took.Round(time.Millisecond), strings.TrimSpace(string(body)))
}
