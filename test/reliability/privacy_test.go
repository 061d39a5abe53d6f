package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/geo/geotest"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// privacyPlaces puts two cities in one /24 and two in one /48, so a
// location from a truncated address would differ from the full one.
var privacyPlaces = []geotest.Place{
	{Network: "203.0.113.0/26", Country: "FR", Name: "France", City: "Paris", Lat: 48.85, Lon: 2.35},
	{Network: "203.0.113.64/26", Country: "DE", Name: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.405},
	{Network: "2001:db8:1::/56", Country: "FR", Name: "France", City: "Paris", Lat: 48.85, Lon: 2.35},
	{Network: "2001:db8:1:ff00::/56", Country: "JP", Name: "Japan", City: "Tokyo", Lat: 35.68, Lon: 139.69},
}

// TestAddresses runs the server with each addresses mode and checks what
// the file and the API keep of the resolver and ECS addresses, and that
// geolocation still used the full address at ingest.
func TestAddresses(t *testing.T) {
	city := geotest.WriteCity(t, privacyPlaces)
	type sent struct {
		ecs      *dns.EDNS0_SUBNET
		wantCity string
	}
	reports := []sent{
		{ecsOption(1, 32, "203.0.113.77"), "Berlin"},
		{ecsOption(1, 28, "203.0.113.77"), "Berlin"},
		{ecsOption(1, 16, "203.0.113.77"), "Paris"}, // 203.0.0.0/16 is looked up as 203.0.0.0: not in the database
		{ecsOption(2, 64, "2001:db8:1:ff01::1"), "Tokyo"},
		{ecsOption(2, 128, "2001:db8:1:ff01::1"), "Tokyo"},
		{nil, ""}, // the resolver, 127.0.0.1, is not geolocated
	}
	reports[2].wantCity = ""

	want := map[string][]struct{ resolver, ecs string }{
		"full": {
			{"127.0.0.1", "203.0.113.77/32"}, {"127.0.0.1", "203.0.113.64/28"}, {"127.0.0.1", "203.0.0.0/16"},
			{"127.0.0.1", "2001:db8:1:ff01::/64"}, {"127.0.0.1", "2001:db8:1:ff01::1/128"}, {"127.0.0.1", ""},
		},
		"truncate": {
			{"127.0.0.0", "203.0.113.0/24"}, {"127.0.0.0", "203.0.113.0/24"}, {"127.0.0.0", "203.0.0.0/16"},
			{"127.0.0.0", "2001:db8:1::/48"}, {"127.0.0.0", "2001:db8:1::/48"}, {"127.0.0.0", ""},
		},
		"drop": {{}, {}, {}, {}, {}, {}},
	}
	for _, mode := range []string{"full", "truncate", "drop"} {
		t.Run(mode, func(t *testing.T) {
			s := newServer(t, config{Options: "addresses " + mode + "\ngeoip " + city + "\n" + limitOff(t)})
			s.start()
			names := make([]string, len(reports))
			for i, r := range reports {
				names[i] = strings.ToLower(nextName(5000 + i))
				m := new(dns.Msg)
				m.SetQuestion(names[i], dns.TypeA)
				if r.ecs != nil {
					m.SetEdns0(1232, false)
					m.IsEdns0().Option = []dns.EDNS0{r.ecs}
				}
				resp, err := dns.Exchange(m, s.dnsAddr())
				if err != nil || len(resp.Answer) != 1 {
					t.Fatalf("report %d: %v %v", i, resp, err)
				}
			}

			// The API shows what is kept.
			var body struct {
				Reports []struct {
					Beacon   string  `json:"beacon"`
					Resolver string  `json:"resolver"`
					ECS      *string `json:"ecs"`
					Geo      struct {
						City   string `json:"city"`
						Source string `json:"source"`
					} `json:"geo"`
				} `json:"reports"`
			}
			getJSON(t, fmt.Sprintf("http://%s/api/v1/reports?from=0&limit=100", s.cfg.API), &body)
			if len(body.Reports) != len(reports) {
				t.Fatalf("api lists %d reports, want %d", len(body.Reports), len(reports))
			}
			byBeacon := map[string]int{}
			for i := range reports {
				byBeacon[beacon(5000+i)] = i
			}
			for _, r := range body.Reports {
				i, ok := byBeacon[r.Beacon]
				if !ok {
					t.Fatalf("unexpected report %q", r.Beacon)
				}
				ecs := ""
				if r.ECS != nil {
					ecs = *r.ECS
				}
				w := want[mode][i]
				if r.Resolver != w.resolver || ecs != w.ecs {
					t.Errorf("%s, report %d via API: resolver %q ecs %q, want %q %q", mode, i, r.Resolver, ecs, w.resolver, w.ecs)
				}
				if r.Geo.City != reports[i].wantCity {
					t.Errorf("%s, report %d: located in %q (%s), want %q: geolocation must use the full address", mode, i, r.Geo.City, r.Geo.Source, reports[i].wantCity)
				}
			}

			// And the file holds no more than the API shows.
			s.stop()
			checkFile(t, s.cfg.DB)
			st, err := store.Open(s.cfg.DB, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			st.Each(time.Unix(0, 0), time.Now().Add(time.Hour), 0, func(r *record.Record) error {
				i := byBeacon[r.Report.Beacon]
				w := want[mode][i]
				res := ""
				if r.Resolver.IsValid() {
					res = r.Resolver.String()
				}
				if res != w.resolver || ecsString(r.ECS) != w.ecs {
					t.Errorf("%s, report %d in the file: resolver %q ecs %q, want %q %q", mode, i, res, ecsString(r.ECS), w.resolver, w.ecs)
				}
				return nil
			})
			// Raw bytes too: no full address left anywhere in the file.
			if mode != "full" {
				raw := fileBytes(t, s.cfg.DB)
				for _, a := range []string{"203.0.113.77", "2001:db8:1:ff01::1", "127.0.0.1"} {
					b := netip.MustParseAddr(a).AsSlice()
					if containsBytes(raw, b) {
						t.Errorf("%s: the file still holds the bytes of %s", mode, a)
					}
				}
			}
		})
	}
}

// TestRetention runs the server with a retention of a few seconds and a
// sweep every second: reports older than that leave the file and the raw
// API, while the summary totals (rollups) stay the same.
func TestRetention(t *testing.T) {
	s := newServer(t, config{Options: "retention 4s 1s\n" + limitOff(t)})
	s.start()
	const n = 30
	for i := range n {
		if r := query(t, s.dnsAddr(), "udp", nextName(6000+i), dns.TypeA, dns.ClassINET); len(r.Answer) != 1 {
			t.Fatal(r)
		}
	}
	summaryURL := fmt.Sprintf("http://%s/api/v1/summary?from=0", s.cfg.API)
	var before, after map[string]any
	getJSON(t, summaryURL, &before)
	if before["reports"] != float64(n) || before["installations"] != float64(n) {
		t.Fatalf("summary before the sweep: reports %v installations %v, want %d", before["reports"], before["installations"], n)
	}
	if got := countReports(t, s); got != n {
		t.Fatalf("%d raw reports, want %d", got, n)
	}

	// Gone within the retention plus a few sweeps.
	deadline := time.Now().Add(15 * time.Second)
	for countReports(t, s) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("reports still listed 15s after a 4s retention: %d", countReports(t, s))
		}
		time.Sleep(250 * time.Millisecond)
	}
	deleted := metricTotal(s.metricsText(), "coredns_statusengine_retention_deleted_total")
	getJSON(t, summaryURL, &after)
	for _, k := range []string{"reports", "installations", "installations_ever"} {
		if before[k] != after[k] {
			t.Errorf("summary %s was %v before the sweep, %v after: rollups must stay", k, before[k], after[k])
		}
	}
	if deleted != n {
		t.Errorf("coredns_statusengine_retention_deleted_total = %v, want %d", deleted, n)
	}
	s.stop()
	checkFile(t, s.cfg.DB)
	st, err := store.Open(s.cfg.DB, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Count() != 0 {
		t.Errorf("%d records left in the file", st.Count())
	}
	t.Logf("retention 4s: %d reports deleted by the sweep, summary totals kept (%v reports, %v installations)", n, after["reports"], after["installations"])
}

// TestRetentionKeepsDeduplication: a client whose clock is behind sends an
// epoch older than the retention; the sweep must not forget that the
// report is stored while the record itself is kept, or the resolver's retry
// is stored a second time.
func TestRetentionKeepsDeduplication(t *testing.T) {
	s := newServer(t, config{Options: "retention 1h 1s\n" + limitOff(t)})
	s.start()
	old := reportName(7000, time.Now().Add(-3*time.Hour).Unix())
	before := s.outcomes()
	query(t, s.dnsAddr(), "udp", old, dns.TypeA, dns.ClassINET)
	time.Sleep(2500 * time.Millisecond) // two sweeps
	query(t, s.dnsAddr(), "udp", old, dns.TypeA, dns.ClassINET)
	d := delta(before, s.outcomes())
	if d["stored"] != 1 || d["duplicate"] != 1 {
		t.Errorf("a report with a 3h-old epoch sent twice around a sweep: outcomes %v, want stored 1, duplicate 1", d)
	}
	if got := countReports(t, s); got != 1 {
		t.Errorf("%d records of one report", got)
	}
}

func countReports(t *testing.T, s *server) int {
	t.Helper()
	var body struct {
		Reports []json.RawMessage `json:"reports"`
	}
	getJSON(t, fmt.Sprintf("http://%s/api/v1/reports?from=0&limit=1000", s.cfg.API), &body)
	return len(body.Reports)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	getJSONWith(t, http.DefaultClient, url, v)
}

func getJSONWith(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func containsBytes(b, sub []byte) bool { return bytes.Contains(b, sub) }

// TestPublicCompatRows (issue 10, point 5): with a token set, the public
// original-compatible rows carry nothing the beacon could be rebuilt from:
// no installation id, client epoch, sub-second receive time or beacon; the
// installation appears as its hash. Before: every field but the beacon.
func TestPublicCompatRows(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	s.start()
	const n = 20
	epoch := time.Now().Unix() - 100
	for i := range n {
		if r := query(t, s.dnsAddr(), "udp", reportName(1000+i, epoch+int64(i)), dns.TypeA, dns.ClassINET); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("report %d: %s", i, dns.RcodeToString[r.Rcode])
		}
	}
	now := time.Now().Unix() + 1
	for _, path := range []string{fmt.Sprintf("/api/0/%d", now), fmt.Sprintf("/api/unique/0/%d", now)} {
		code, _, public := apiGet(t, s, path, "")
		_, _, private := apiGet(t, s, path, apiToken)
		var pub, priv struct {
			Amount  int              `json:"amount"`
			Results []map[string]any `json:"results"`
		}
		if code != 200 || json.Unmarshal([]byte(public), &pub) != nil || json.Unmarshal([]byte(private), &priv) != nil || pub.Amount != n || len(priv.Results) != n {
			t.Fatalf("GET %s: %d, %d rows public, %d with the token: %.300s", path, code, pub.Amount, len(priv.Results), public)
		}
		for i := range n {
			id := fmt.Sprintf("%040x", 1000+i)
			if strings.Contains(public, id) || strings.Contains(public, fmt.Sprint(epoch+int64(i))) {
				t.Errorf("GET %s: the public answer carries the id or the client epoch of report %d", path, i)
			}
			if !strings.Contains(private, id) {
				t.Errorf("GET %s: the token holder's answer lacks the id of report %d", path, i)
			}
		}
		for _, row := range pub.Results {
			for _, f := range []string{"id", "client_epoch", "received", "beacon"} {
				if _, ok := row[f]; ok {
					t.Errorf("GET %s: public row has %q: %v", path, f, row)
				}
			}
			if h, _ := row["installation"].(string); len(h) != 16 {
				t.Errorf("GET %s: public row without the installation hash: %v", path, row)
			}
			if ts, _ := row["ts_epoch"].(string); len(ts) != 10 {
				t.Errorf("GET %s: ts_epoch %q, want whole seconds", path, ts)
			}
		}
		for _, row := range priv.Results {
			if r, _ := row["received"].(string); !strings.Contains(r, ".") {
				t.Errorf("GET %s: the token holder's row lacks the receive time to the nanosecond: %v", path, row)
			}
		}
		t.Logf("GET %s: %d rows; public row: %v", path, pub.Amount, pub.Results[0])
	}
}
