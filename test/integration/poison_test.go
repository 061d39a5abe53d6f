package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coredns/coredns/test"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/geo/geotest"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// sixtyCountries are the countries of the poisoning test's City database.
var sixtyCountries = []string{"AR", "AT", "AU", "BE", "BG", "BR", "CA", "CH", "CL", "CN", "CO", "CZ", "DE", "DK", "EE",
	"EG", "ES", "FI", "FR", "GB", "GR", "HK", "HR", "HU", "ID", "IE", "IL", "IN", "IS", "IT", "JP", "KE", "KR", "LT",
	"LU", "LV", "MA", "MX", "MY", "NG", "NL", "NO", "NZ", "PE", "PH", "PK", "PL", "PT", "RO", "RS", "SE", "SG", "SI",
	"SK", "TH", "TR", "UA", "US", "VN", "ZA"}

func poisonCorefile(dnsPort, apiAddr, db, city, tokenFile, apiBody string) string {
	return fmt.Sprintf(`status.modsecurity.org:%s {
    bind 127.0.0.1
    statusengine {
        db %s
        geoip %s
        api %s {
            token_file %s
            %s
        }
    }
}`, dnsPort, db, city, apiAddr, tokenFile, apiBody)
}

type mapAnswer struct {
	Countries []struct{ Code string }
	Points    []struct{ Lat, Lon float64 }
	Other     struct{ Values int }
}

// TestECSPoisoning: 120 queries from one resolver (here loopback) with EDNS
// Client Subnets chosen in 60 countries, 2 each, each a made-up
// installation: before the public floor they put 60 countries on the map.
// Now the public map, summary and daily snapshot show none of them (each
// country has 2 installations, under 5); the token shows all 60. Nor do 5
// installations per country: their ECS networks are the sender's choice,
// and the floor counts resolver networks.
func TestECSPoisoning(t *testing.T) {
	dir := t.TempDir()
	var places []geotest.Place
	for i, c := range sixtyCountries {
		places = append(places, geotest.Place{Network: fmt.Sprintf("45.%d.0.0/16", i), Country: c, Name: c, City: "City " + c,
			Lat: float64(i) - 30, Lon: float64(2*i) - 60})
	}
	city := geotest.WriteCity(t, places)
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("poison-token"), 0o600)
	port, apiAddr := freePort(t), "127.0.0.1:"+freePort(t)
	inst, err := test.CoreDNSServer(poisonCorefile(port, apiAddr, filepath.Join(dir, "se.db"), city, tokenFile, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { inst.Stop() }()
	addr, base := "127.0.0.1:"+port, "http://"+apiAddr
	send := func(perCountry, offset int) {
		for i := range sixtyCountries {
			for j := range perCountry {
				k := offset + j
				beacon := fmt.Sprintf("2.9.7,Apache/2.4.62 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", (i*7+k)%256)
				queryECS(t, addr, codec.Encode(beacon, int64(1795549302+i*100+k), zone), fmt.Sprintf("45.%d.%d.0/24", i, k))
			}
		}
	}
	send(2, 0)

	var priv, pub mapAnswer
	getJSON(t, base+"/api/v1/map", "poison-token", &priv)
	if len(priv.Countries) != 60 || len(priv.Points) != 60 {
		t.Fatalf("with the token the map has %d countries, %d points; the queries did not land", len(priv.Countries), len(priv.Points))
	}
	getJSON(t, base+"/api/v1/map", "", &pub)
	if len(pub.Countries) != 0 || len(pub.Points) != 0 || pub.Other.Values != 60 {
		t.Errorf("120 queries with chosen ECS put %d countries and %d points on the public map (%d folded)", len(pub.Countries), len(pub.Points), pub.Other.Values)
	}
	var sum struct {
		Breakdowns map[string][]struct {
			Value  string
			Other  bool
			Values int
		}
	}
	getJSON(t, base+"/api/v1/summary", "", &sum)
	if c := sum.Breakdowns["country"]; len(c) != 1 || !c[0].Other || c[0].Values != 60 {
		t.Errorf("public summary countries: %+v", c)
	}
	resp, err := http.Get(base + "/api/v1/public/daily/" + time.Now().UTC().Format(time.DateOnly) + ".json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range sixtyCountries {
		if bytes.Contains(body, []byte(`"`+c+`"`)) {
			t.Errorf("today's snapshot names %s", c)
			break
		}
	}
	t.Logf("120 queries, 2 per country from distinct ECS /24s: the token sees %d countries, the public map %d (%d folded into other)",
		len(priv.Countries), len(pub.Countries), pub.Other.Values)

	// 3 more queries per country make 5 installations from 5 ECS networks
	// each, but all came through one resolver network, which is what the
	// floor counts: still nothing public (before, these put all 60 back).
	send(3, 2)
	time.Sleep(1100 * time.Millisecond) // map answers are reused for a second
	getJSON(t, base+"/api/v1/map", "", &pub)
	getJSON(t, base+"/api/v1/map", "poison-token", &priv)
	t.Logf("with 3 more queries per country (300 in all): the token sees %d countries, the public map %d", len(priv.Countries), len(pub.Countries))
	if len(pub.Countries) != 0 || len(pub.Points) != 0 || len(priv.Countries) != 60 {
		t.Errorf("300 queries with chosen ECS through one resolver network: %d countries and %d points public, %d with the token",
			len(pub.Countries), len(pub.Points), len(priv.Countries))
	}
}

// TestSnapshotAcrossRestart: a past day's public snapshot is the same bytes
// on every request and after the server restarts, even with another
// public_min.
func TestSnapshotAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "se.db")
	city := geotest.WriteCity(t, []geotest.Place{{Network: "45.0.0.0/8", Country: "DE", Name: "Germany", City: "Berlin", Lat: 52.5, Lon: 13.4}})
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	var recs []*record.Record
	for i := range 200 {
		rep, err := codec.ParseBeacon(fmt.Sprintf("2.9.%d,Apache/2.4.62 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", 3+i%6, i))
		if err != nil {
			t.Fatal(err)
		}
		rep.Epoch, rep.HasEpoch = int64(1795000000+i), true
		recs = append(recs, &record.Record{Received: day.Add(-time.Duration(i) * 10 * time.Minute), Zone: zone, Report: rep,
			Resolver: netip.AddrFrom4([4]byte{45, byte(i % 20), 1, 1}),
			Geo:      geo.Location{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.5, Lon: 13.4, HasPoint: true, Source: "resolver"}})
	}
	if _, err := st.SubmitBatch(recs); err != nil {
		t.Fatal(err)
	}
	st.Close()

	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("restart-token"), 0o600)
	port, apiAddr := freePort(t), "127.0.0.1:"+freePort(t)
	url := "http://" + apiAddr + "/api/v1/public/daily/" + day.AddDate(0, 0, -1).Format(time.DateOnly) + ".json"
	fetch := func() []byte {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Fatalf("GET %s: %s %v", url, resp.Status, resp.Header)
		}
		return b
	}
	inst, err := test.CoreDNSServer(poisonCorefile(port, apiAddr, db, city, tokenFile, ""))
	if err != nil {
		t.Fatal(err)
	}
	first := fetch()
	if again := fetch(); !bytes.Equal(again, first) {
		t.Errorf("two requests, two answers:\n%s\n%s", first, again)
	}
	inst.Stop()
	inst, err = test.CoreDNSServer(poisonCorefile(port, apiAddr, db, city, tokenFile, "public_min 1 1"))
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer inst.Stop()
	if after := fetch(); !bytes.Equal(after, first) {
		t.Errorf("after a restart with public_min 1 1 the snapshot changed:\n%s\n%s", first, after)
	}
	if !bytes.Contains(first, []byte(`"latest_modsec":"2.9.8"`)) || !bytes.Contains(first, []byte(`"code":"DE"`)) {
		t.Errorf("snapshot: %s", first)
	}
	t.Logf("snapshot of %s: %d bytes, the same across two requests and a restart", day.AddDate(0, 0, -1).Format(time.DateOnly), len(first))
}
