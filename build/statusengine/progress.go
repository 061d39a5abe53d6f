package main

import (
	"fmt"
	"strings"
	"time"
)

// progressMin is the smallest input that gets a progress bar.
const progressMin = 1 << 20

// progress draws a bar on standard error while a large file is read, only
// when standard output is a terminal (not in scripts, pipes or logs).
type progress struct {
	e     *env
	name  string
	size  int64
	last  time.Time
	shown bool
}

func newProgress(e *env, name string, size int64) *progress {
	if !e.tty || size < progressMin {
		return nil
	}
	return &progress{e: e, name: name, size: size}
}

func (p *progress) set(n int64) {
	if p == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.shown = true
	const width = 30
	frac := min(float64(n)/float64(p.size), 1)
	fill := int(frac * width)
	fmt.Fprintf(p.e.stderr, "\r%s [%s%s] %3.0f%% %d/%d MiB", p.name, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		frac*100, n>>20, p.size>>20)
}

func (p *progress) done() {
	if p == nil || !p.shown {
		return
	}
	p.last = time.Time{}
	p.set(p.size)
	fmt.Fprintln(p.e.stderr)
}
