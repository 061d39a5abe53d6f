package browser

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coredns/coredns/test"

	"github.com/statusengine/statusengine/client"
	"github.com/statusengine/statusengine/plugin/statusengine"
)

// zonesJS reads what the zone selector shows.
const zonesJS = `(() => ({
  pickHidden: document.getElementById('zone-pick').hidden,
  options: [...document.querySelectorAll('#zone option')].map(o => o.value + '=' + o.textContent),
  title: document.getElementById('page-title').textContent,
  docTitle: document.title,
  latestTitle: document.getElementById('fig-latest-title').textContent,
  latest: document.getElementById('fig-latest').textContent,
  reports: document.getElementById('fig-reports').textContent,
  panels: [...document.querySelectorAll('#fields h2')].map(h => h.textContent),
  modsecHidden: document.getElementById('modsec-breakdowns').hidden,
  combosHidden: document.getElementById('combos-card').hidden,
  exposureHidden: document.getElementById('exposure').hidden && document.getElementById('exposure-list').hidden,
  version: [...document.querySelectorAll('#fields [data-breakdown="version"] li .label')].map(l => l.textContent),
  splits: [...document.querySelectorAll('#split option')].map(o => o.value),
  state: document.body.dataset.state,
}))()`

type zonesState struct {
	PickHidden   bool     `json:"pickHidden"`
	Options      []string `json:"options"`
	Title        string   `json:"title"`
	DocTitle     string   `json:"docTitle"`
	LatestTitle  string   `json:"latestTitle"`
	Latest       string   `json:"latest"`
	Reports      string   `json:"reports"`
	Panels       []string `json:"panels"`
	ModsecHidden bool     `json:"modsecHidden"`
	CombosHidden bool     `json:"combosHidden"`
	// The exposure panels: ModSecurity's zones only (issue 20).
	ExposureHidden bool     `json:"exposureHidden"`
	Version        []string `json:"version"`
	Splits         []string `json:"splits"`
	State          string   `json:"state"`
}

// TestStatusPageZones: a server of ModSecurity's zone and a zone of a
// custom schema sharing one database and API shows a zone selector; the
// custom zone's page has its title, a panel per field named after it, its
// version field as the latest, no ModSecurity panels, and its own figures;
// ModSecurity's page is as before.
func TestStatusPageZones(t *testing.T) {
	chromiumPath(t)
	db := filepath.Join(t.TempDir(), "statusengine.db")
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.LocalAddr().(*net.UDPAddr).Port)
	l.Close()
	block := func(z, extra string) string {
		return fmt.Sprintf(`%s:%s {
    bind 127.0.0.1
    statusengine {
        db %s
        api 127.0.0.1:0 {
            public_min 1 1
        }
        limit off
        %s
    }
}
`, z, port, db, extra)
	}
	corefile := block(strings.TrimSuffix(zone, "."), "") + block("status.example.org", `schema {
            fields product version os arch id
            version version
            platform os
            id id
        }
        title "Example status"`)
	inst, err := test.CoreDNSServer(corefile)
	if err != nil {
		t.Fatalf("CoreDNS: %v", err)
	}
	t.Cleanup(func() { inst.Stop() })
	base := "http://" + statusengine.ListenAddr
	server := "127.0.0.1:" + port

	// 6 installations of the custom zone, 4 on 1.2.3 and 2 on 1.10.0; 3 of
	// ModSecurity's.
	now := time.Now().Unix()
	for i := range 6 {
		v := "1.2.3"
		if i >= 4 {
			v = "1.10.0"
		}
		b, err := client.Beacon("myapp", v, "Linux", "x86_64", fmt.Sprintf("%040x", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Send(context.Background(), b, client.Options{Server: server, Zone: "status.example.org", Epoch: now, Timeout: 2 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		b := fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", i)
		if _, err := client.Send(context.Background(), b, client.Options{Server: server, Zone: zone, Epoch: now, Timeout: 2 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}

	b := newBrowser(t, base)
	read := func() zonesState {
		s, err := chromedp.Run(b.ctx, chromedp.Evaluate[zonesState](zonesJS))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	wait := func(what string, ok func(zonesState) bool) zonesState {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s := read()
			if s.State == "ready" && ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("page does not show %s: %+v", what, s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	b.do(chromedp.Navigate(base + "/#range=24h"))
	s := wait("ModSecurity's page", func(s zonesState) bool { return s.Reports == "3" })
	if s.PickHidden || len(s.Options) != 2 || s.Options[0] != "=ModSecurity status" || s.Options[1] != "status.example.org.=Example status" ||
		s.Title != "ModSecurity status" || s.ModsecHidden || s.CombosHidden || s.ExposureHidden || len(s.Panels) != 0 || s.Latest != "2.9.7" {
		t.Errorf("ModSecurity's page: %+v", s)
	}

	// The selector switches to the custom zone.
	b.do(chromedp.Evaluate[chromedp.Void](`(() => { const z = document.getElementById('zone'); z.value = 'status.example.org.'; z.dispatchEvent(new Event('change')); })()`))
	s = wait("the custom zone's page", func(s zonesState) bool { return s.Reports == "6" && len(s.Version) == 2 })
	if s.Title != "Example status" || s.DocTitle != "Example status" || !s.ModsecHidden || !s.CombosHidden || !s.ExposureHidden ||
		strings.Join(s.Panels, ",") != "product,version,os,arch" || s.LatestTitle != "Latest version" || s.Latest != "1.10.0" ||
		s.Version[0] != "1.2.3" || strings.Join(s.Splits, ",") != "product,version,os,arch,country" {
		t.Errorf("custom zone's page: %+v", s)
	}
	hash, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.hash`))
	if err != nil || !strings.Contains(hash, "zone=status.example.org.") {
		t.Errorf("hash %q does not name the zone", hash)
	}

	// A link to the zone opens it directly.
	b.do(chromedp.Navigate(base + "/?fresh#range=24h&zone=status.example.org."))
	s = wait("the custom zone from the link", func(s zonesState) bool { return s.Reports == "6" && s.Title == "Example status" })
	t.Logf("custom zone's page: %+v", s)
}
