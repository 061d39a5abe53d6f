package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/test"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/statusengine/statusengine/plugin/statusengine"
)

func init() { statusengine.AddDirective() }

// chromiumPath finds Debian's chromium; without it the test skips, except in
// CI, where a missing browser is a broken install step.
func chromiumPath(t *testing.T) string {
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not installed (Debian package chromium); CI must install it")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	return p
}

// startServer runs CoreDNS in this process with the statusengine plugin on
// db, DNS and the side listener on loopback ports of its choosing, and
// returns the DNS address and the listener's base URL. options are more
// lines of the statusengine block. The per-source limit is off: every
// report arrives from 127.0.0.1, standing in for one big public resolver.
func startServer(t *testing.T, db string, options ...string) (udp, base string) {
	t.Helper()
	corefile := fmt.Sprintf(`%s:0 {
    bind 127.0.0.1
    statusengine {
        db %s
        api 127.0.0.1:0
        limit off
        %s
    }
}`, strings.TrimSuffix(zone, "."), db, strings.Join(options, "\n        "))
	inst, udp, _, err := test.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("CoreDNS: %v", err)
	}
	t.Cleanup(func() { inst.Stop() })
	return udp, "http://" + statusengine.ListenAddr
}

// browser is one headless Chromium tab on the status page. Anything the page
// logs as an error, and any request that leaves base (the page must work
// offline), is collected and fails the test at its end.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	b := &browser{t: t, ctx: ctx, base: base}
	t.Cleanup(func() {
		cancelT()
		cancel()
		cancelA()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, s := range b.problems {
			t.Errorf("browser: %s", s)
		}
	})

	// Open the tab first, so that the listener sees every event of the page.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.note("exception: " + ev.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == "error" {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				b.note("console.error: " + strings.Join(args, " "))
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				b.note("log: " + ev.Entry.Text + " " + ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			if u := ev.Request.URL; !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "data:") {
				b.note("request off the listener: " + u)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, log.Enable, cdp.Empty{})
		return err
	}))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return b
}

func (b *browser) note(s string) {
	b.mu.Lock()
	b.problems = append(b.problems, s)
	b.mu.Unlock()
}

// do runs actions, failing the test on an error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("chromium: %v", err)
	}
}

// waitFor polls the DOM until the page has rendered and shows what ok
// wants, and returns that state. Waiting for the content rather than for a
// render count keeps an auto-refresh that lands in between from passing
// stale data off as the awaited render.
func (b *browser) waitFor(what string, limit time.Duration, ok func(pageState) bool) pageState {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		p, err := chromedp.Run(b.ctx, chromedp.Evaluate[pageState](collectJS))
		if err != nil {
			b.t.Fatalf("reading the page: %v", err)
		}
		if p.State == "error" {
			b.t.Fatalf("page shows an error: %s", p.Error)
		}
		if p.State == "ready" && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("page does not show %s after %v (state %q, %d renders, range %d..%d, %s reports)",
				what, limit, p.State, p.Renders, p.From, p.To, p.Reports)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// last is a waitFor condition: the page shows the last d up to now (a
// custom range of the same length is not it).
func last(d time.Duration) func(pageState) bool {
	return func(p pageState) bool {
		return p.To-p.From == int64(d/time.Second) && time.Now().Unix()-p.To < 120
	}
}

// screenshot saves a PNG in the test's artifact directory and returns its path.
func (b *browser) screenshot(name string, shot chromedp.Action[[]byte]) string {
	b.t.Helper()
	// Let fonts and the canvas settle before the picture.
	b.do(chromedp.Sleep(300 * time.Millisecond))
	png, err := chromedp.Run(b.ctx, shot)
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(out, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s (%d KB)", out, len(png)/1024)
	return out
}

// darkMode makes the page see prefers-color-scheme: dark.
func (b *browser) darkMode() {
	b.t.Helper()
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
}
