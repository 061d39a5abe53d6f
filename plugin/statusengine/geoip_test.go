package statusengine

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/caddy"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/geo/geotest"
)

func TestParseAPIAndGeoip(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	emptyFile := filepath.Join(dir, "empty")
	os.WriteFile(emptyFile, nil, 0o600)
	city := geotest.WriteCity(t, []geotest.Place{{Network: "198.51.100.0/24", Country: "DE", City: "Berlin", Lat: 52.5, Lon: 13.4}})

	tests := []struct {
		input     string
		wantErr   string // substring; "" means success
		wantToken string
		wantCity  bool
	}{
		{"statusengine {\napi 127.0.0.1:0 {\ntoken abc\n}\nttl 30\n}", "", "abc", false},
		{"statusengine {\napi 127.0.0.1:0 {\ntoken_file " + tokenFile + "\n}\n}", "", "s3cret", false},
		{"statusengine {\napi 127.0.0.1:0\nns ns1\n}", "", "", false},
		{"statusengine {\ngeoip " + city + "\n}", "", "", true},
		{"statusengine {\napi 127.0.0.1:0 {\ntoken\n}\n}", "token needs one value", "", false},
		{"statusengine {\napi 127.0.0.1:0 {\ntoken a\ntoken_file " + tokenFile + "\n}\n}", "only one of token and token_file", "", false},
		{"statusengine {\napi 127.0.0.1:0 {\ntoken_file /nonexistent/x\n}\n}", "api: token_file", "", false},
		{"statusengine {\napi 127.0.0.1:0 {\ntoken_file " + emptyFile + "\n}\n}", "is empty", "", false},
		{"statusengine {\napi 127.0.0.1:0 {\npassword x\n}\n}", `api: unknown property "password"`, "", false},
		{"statusengine {\napi off {\ntoken x\n}\n}", "api off takes no block", "", false},
		{"statusengine {\ngeoip\n}", "geoip needs one database file name", "", false},
		{"statusengine {\ngeoip /nonexistent/city.mmdb\n}", "geoip:", "", false},
		{"statusengine {\ngeoip " + tokenFile + "\n}", "geoip:", "", false},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
		se, err := parse(c)
		switch {
		case !checkParseErr(t, i, err, tc.wantErr):
		case err == nil:
			if se.api.token != tc.wantToken || se.api.cityDatabase != tc.wantCity {
				t.Errorf("test %d: token %q city %v, want %q %v", i, se.api.token, se.api.cityDatabase, tc.wantToken, tc.wantCity)
			}
			if se.geo == nil {
				t.Errorf("test %d: no locator", i)
			}
		}
	}
}

func TestParseErrorNamesLineInAPIBlock(t *testing.T) {
	c := caddy.NewTestController("dns", "statusengine {\n  api 127.0.0.1:0 {\n    tokn x\n  }\n}")
	_, err := parse(c)
	if err == nil || !strings.Contains(err.Error(), ":3 ") || !strings.Contains(err.Error(), `"tokn"`) {
		t.Fatalf("error %v should name line 3 and the property", err)
	}
}

func TestDefaultLocatorIsEmbedded(t *testing.T) {
	c := caddy.NewTestController("dns", "statusengine")
	se, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	g := se.geo.Locate(netip.MustParseAddr("8.8.8.8"), netip.Prefix{})
	if g.Country != "US" || g.Source != geo.SourceResolver {
		t.Errorf("default locator: %+v", g)
	}
}
