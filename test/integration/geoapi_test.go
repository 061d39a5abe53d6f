package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coredns/coredns/test"

	"github.com/miekg/dns"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo/geotest"
)

func geoCorefile(dnsPort, apiAddr, db, city, tokenFile string) string {
	return fmt.Sprintf(`status.modsecurity.org:%s {
    bind 127.0.0.1
    statusengine {
        db %s
        geoip %s
        api %s {
            token_file %s
        }
    }
}`, dnsPort, db, city, apiAddr, tokenFile)
}

// queryECS sends name with an EDNS Client Subnet option for subnet.
func queryECS(t *testing.T, addr, name, subnet string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	if subnet != "" {
		_, n, err := net.ParseCIDR(subnet)
		if err != nil {
			t.Fatal(err)
		}
		bits, _ := n.Mask.Size()
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(bits), Address: n.IP.To4()})
		m.Extra = append(m.Extra, o)
	}
	r, err := dns.Exchange(m, addr)
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("query %s: %v %v", name, r, err)
	}
}

func getJSON(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %s, body not JSON: %v", url, resp.Status, err)
	}
	return resp.StatusCode
}

// TestGeoAndToken runs the plugin with a City database and an API token:
// reports are geolocated from ECS, else the resolver (loopback: unknown), raw
// data needs the token, the public endpoints show locations, and a reload
// with another token takes effect.
func TestGeoAndToken(t *testing.T) {
	dir := t.TempDir()
	city := geotest.WriteCity(t, []geotest.Place{
		{Network: "198.51.100.0/24", Country: "DE", Name: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.405},
	})
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("first-token\n"), 0o600)
	db := filepath.Join(dir, "se.db")
	port, apiAddr := freePort(t), "127.0.0.1:"+freePort(t)
	inst, err := test.CoreDNSServer(geoCorefile(port, apiAddr, db, city, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { inst.Stop() }()
	addr := "127.0.0.1:" + port
	queryECS(t, addr, codec.Encode(realBeacon, 1795549302, zone), "198.51.100.0/24")
	queryECS(t, addr, codec.Encode(realBeacon, 1795549303, zone), "")

	base := "http://" + apiAddr
	var errBody map[string]string
	if code := getJSON(t, base+"/api/v1/reports", "", &errBody); code != 401 || errBody["error"] == "" {
		t.Fatalf("reports without token: %d %v", code, errBody)
	}
	var page struct {
		Reports []struct {
			Resolver string  `json:"resolver"`
			ECS      *string `json:"ecs"`
			Geo      struct {
				Country, City, Source string
				Lat                   *float64
			} `json:"geo"`
		} `json:"reports"`
	}
	if code := getJSON(t, base+"/api/v1/reports", "first-token", &page); code != 200 || len(page.Reports) != 2 {
		t.Fatalf("reports with token: %d %+v", code, page)
	}
	ecs, plain := page.Reports[0], page.Reports[1]
	if ecs.Geo.Country != "DE" || ecs.Geo.City != "Berlin" || ecs.Geo.Source != "ecs" || ecs.Geo.Lat == nil || ecs.ECS == nil || *ecs.ECS != "198.51.100.0/24" {
		t.Errorf("ECS report: %+v", ecs)
	}
	if plain.Geo.Country != "" || plain.Geo.Source != "resolver" || plain.Resolver != "127.0.0.1" || plain.ECS != nil {
		t.Errorf("loopback report: %+v", plain)
	}

	var m struct {
		CityDatabase bool `json:"city_database"`
		Countries    []struct{ Code string }
		Points       []struct{ Lat, Lon float64 }
	}
	// With the token: one installation is under the public floor.
	getJSON(t, base+"/api/v1/map", "first-token", &m)
	if !m.CityDatabase || len(m.Countries) != 1 || m.Countries[0].Code != "DE" || len(m.Points) != 1 || m.Points[0].Lat != 52.5 || m.Points[0].Lon != 13.4 {
		t.Errorf("map: %+v", m)
	}
	var compat struct {
		Results []map[string]any `json:"results"`
	}
	url := fmt.Sprintf("%s/api/0/%d", base, time.Now().Unix()+60)
	getJSON(t, url, "", &compat)
	if len(compat.Results) != 2 || compat.Results[0]["beacon"] != nil || compat.Results[0]["country"] != "DE" ||
		compat.Results[0]["dns_server"].(map[string]any)["latitude"] != "52.5200" {
		t.Errorf("public compat rows: %v", compat.Results)
	}

	// A reload with a new token file content: the old token stops working.
	os.WriteFile(tokenFile, []byte("second-token"), 0o600)
	inst, err = inst.Restart(test.NewInput(geoCorefile(port, apiAddr, db, city, tokenFile)))
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if code := getJSON(t, base+"/api/v1/reports", "first-token", &errBody); code != 401 {
		t.Errorf("old token after reload: %d", code)
	}
	if code := getJSON(t, base+"/api/v1/reports", "second-token", &page); code != 200 || len(page.Reports) != 2 {
		t.Errorf("new token after reload: %d", code)
	}
}
