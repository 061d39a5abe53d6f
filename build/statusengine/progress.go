package main

import (
	"fmt"
	"strings"
	"time"
)

// progressMin is the smallest input that gets a progress bar.
const progressMin = 1 << 20

// progress draws a bar on standard error while a large file is read, only
// when standard output is a terminal (not in scripts, pipes or logs). For an
// input of unknown size (standard input, a stream) it counts the bytes read.
type progress struct {
	e     *env
	name  string
	size  int64
	n     int64 // read so far
	last  time.Time
	shown bool
}

func newProgress(e *env, name string, size int64) *progress {
	if !e.tty || (size > 0 && size < progressMin) {
		return nil
	}
	return &progress{e: e, name: name, size: size}
}

func (p *progress) set(n int64) {
	if p == nil {
		return
	}
	p.n = n
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.shown = true
	if p.size <= 0 {
		fmt.Fprintf(p.e.stderr, "\r%s %d MiB", p.name, n>>20)
		return
	}
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
	if p.size > 0 {
		p.set(p.size)
	} else {
		p.set(p.n)
	}
	fmt.Fprintln(p.e.stderr)
}
