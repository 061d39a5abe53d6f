package statusengine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/statusengine/statusengine/api"
	"github.com/statusengine/statusengine/plugin/statusengine/advisory"
)

func TestParseAPILimits(t *testing.T) {
	tests := []struct {
		body    string // inside api 127.0.0.1:0 { }
		wantErr string // substring; "" means success
		want    api.Limits
	}{
		{"", "", api.Limits{}},
		{"max_requests 10\nmax_expensive 3\nqueue_wait 500ms", "", api.Limits{MaxRequests: 10, MaxExpensive: 3, QueueWait: 500 * time.Millisecond}},
		{"write_timeout 1m\nread_timeout 20s\nmin_rate 64K", "", api.Limits{WriteTimeout: time.Minute, ReadTimeout: 20 * time.Second, MinRate: 64 << 10}},
		{"cache 8M\ntoken x", "", api.Limits{CacheBytes: 8 << 20}},
		{"cache 8M 16", "", api.Limits{CacheBytes: 8 << 20, CacheEntries: 16}},
		{"max_requests 0", `api: max_requests: "0" is not a number from 1`, api.Limits{}},
		{"max_expensive many", `api: max_expensive: "many" is not a number`, api.Limits{}},
		{"max_requests", "api: max_requests needs one number", api.Limits{}},
		{"queue_wait 0s", `api: queue_wait: "0s" is not a duration`, api.Limits{}},
		{"write_timeout 2h", `api: write_timeout: "2h" is not a duration`, api.Limits{}},
		{"min_rate 100", `api: min_rate: "100" is not a size of at least 1K`, api.Limits{}},
		{"cache 1K", `api: cache: "1K" is not a size of at least 64K`, api.Limits{}},
		{"cache 1M 0", `api: cache: "0" is not a number of entries`, api.Limits{}},
		{"max_requests 5\nmax_requests 6", "api: max_requests specified more than once", api.Limits{}},
		{"token a\ntoken b", "api: token specified more than once", api.Limits{}},
		{"token a\ntoken_file /dev/null", "api: token_file", api.Limits{}},
		// An unknown property is named as such, whatever came before it.
		{"token a\nbogus 1", `api: unknown property "bogus"`, api.Limits{}},
		{"max_requests 5\nmaxrequests 6", `api: unknown property "maxrequests"`, api.Limits{}},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", "statusengine {\napi 127.0.0.1:0 {\n"+tc.body+"\n}\n}")
		c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
		se, err := parse(c)
		if checkParseErr(t, i, err, tc.wantErr) && err == nil && se.api.limits != tc.want {
			t.Errorf("test %d: limits %+v, want %+v", i, se.api.limits, tc.want)
		}
	}
}

// TestAPIErrorNamesPropertyAndLine: an unknown property after a token was
// reported as "only one of token and token_file, once".
func TestAPIErrorNamesPropertyAndLine(t *testing.T) {
	tests := []struct {
		input    string
		wantLine string
		wantText string
	}{
		{"statusengine {\n  api 127.0.0.1:0 {\n    token x\n    tokn y\n  }\n}", ":4 ", `api: unknown property "tokn"`},
		{"statusengine {\n  ttl 60\n  api 127.0.0.1:0 {\n    max_requests 5\n    cache big\n  }\n}", ":5 ", `api: cache: "big"`},
		{"statusengine {\n  api 127.0.0.1:0 {\n    token x\n    token_file y\n  }\n}", ":4 ", "api: token_file"},
	}
	for i, tc := range tests {
		_, err := parse(caddy.NewTestController("dns", tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.wantLine) || !strings.Contains(err.Error(), tc.wantText) {
			t.Errorf("test %d: error %v, want line %q and %q", i, err, strings.TrimSpace(tc.wantLine), tc.wantText)
		}
	}
}

func TestParsePublicMin(t *testing.T) {
	tests := []struct {
		body    string // inside api 127.0.0.1:0 { }
		wantErr string // substring; "" means success
		want    api.Floor
	}{
		{"", "", api.Floor{}}, // the default, filled in by the API
		{"public_min 10 3", "", api.Floor{Installations: 10, Networks: 3}},
		{"public_min 10", "", api.Floor{Installations: 10, Networks: 2}},
		{"public_min 1", "", api.Floor{Installations: 1, Networks: 1}},
		{"public_min 1 1", "", api.Floor{Installations: 1, Networks: 1}},
		{"public_min 64 64", "", api.Floor{Installations: 64, Networks: 64}},
		{"public_min", "api: public_min: needs INSTALLATIONS [NETWORKS]", api.Floor{}},
		{"public_min 5 2 1", "api: public_min: needs INSTALLATIONS [NETWORKS]", api.Floor{}},
		{"public_min 0", `api: public_min: "0" is not a number of installations`, api.Floor{}},
		{"public_min -5", `api: public_min: "-5" is not a number of installations`, api.Floor{}},
		{"public_min five", `api: public_min: "five" is not a number of installations`, api.Floor{}},
		{"public_min 1000001", `api: public_min: "1000001" is not a number of installations`, api.Floor{}},
		{"public_min 5 0", `api: public_min: "0" is not a number of networks from 1 to 64`, api.Floor{}},
		{"public_min 100 65", `api: public_min: "65" is not a number of networks from 1 to 64`, api.Floor{}},
		{"public_min 3 4", "api: public_min: 4 networks need at least 4 installations", api.Floor{}},
		{"public_min 5\npublic_min 6", "api: public_min specified more than once", api.Floor{}},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", "statusengine {\napi 127.0.0.1:0 {\n"+tc.body+"\n}\n}")
		c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
		se, err := parse(c)
		if checkParseErr(t, i, err, tc.wantErr) && err == nil && se.api.publicMin != tc.want {
			t.Errorf("test %d (%q): public_min %+v, want %+v", i, tc.body, se.api.publicMin, tc.want)
		}
	}
	// The error names the line.
	_, err := parse(caddy.NewTestController("dns", "statusengine {\n  api 127.0.0.1:0 {\n    max_requests 5\n    public_min 0\n  }\n}"))
	if err == nil || !strings.Contains(err.Error(), ":4 ") || !strings.Contains(err.Error(), "public_min") {
		t.Errorf("error %v, want line 4 and public_min", err)
	}
}

func TestParseAdvisories(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"id":"LOCAL-1","affected":[{"package":{"name":"libxml2"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.9.14"}]}]}]}`), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`[{"id":"OK-1"},{"id":"BAD-2","affected":[{"package":{"name":"ModSecurity"},"ranges":[{"type":"ECOSYSTEM","events":[{"fixed":"2.9.x"}]}]}]}]`), 0o644)
	ndefault := len(advisory.Default().Advisories)
	tests := []struct {
		body    string
		wantErr string
		records int // 0: the default set (nil)
	}{
		{"", "", 0},
		{"advisories " + good, "", 1},
		{"advisories extend " + good, "", ndefault + 1},
		{"advisories " + dir + "/missing.json", "api: advisories: stat", 0},
		{"advisories", "api: advisories needs [extend] FILE|DIR", 0},
		{"advisories more " + good, "api: advisories needs [extend] FILE|DIR", 0},
		{"advisories " + bad, `api: advisories: ` + bad + `: record 2 ("BAD-2"): affected[0] (ModSecurity) ranges[0]: events[0]: "2.9.x" is no numeric dotted version`, 0},
		{"advisories " + good + "\nadvisories " + good, "api: advisories specified more than once", 0},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", "statusengine {\napi 127.0.0.1:0 {\n"+tc.body+"\n}\n}")
		c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
		se, err := parse(c)
		if !checkParseErr(t, i, err, tc.wantErr) || err != nil {
			continue
		}
		switch {
		case tc.records == 0 && se.api.advisories != nil:
			t.Errorf("test %d: a set without advisories", i)
		case tc.records > 0 && (se.api.advisories == nil || len(se.api.advisories.Advisories) != tc.records):
			t.Errorf("test %d: %v, want %d records", i, se.api.advisories, tc.records)
		}
	}
	// The error names the line.
	_, err := parse(caddy.NewTestController("dns", "statusengine {\n  api 127.0.0.1:0 {\n    max_requests 5\n    advisories "+bad+"\n  }\n}"))
	if err == nil || !strings.Contains(err.Error(), ":4 ") || !strings.Contains(err.Error(), "advisories") || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("error %v, want line 4, advisories and the file", err)
	}
}
