package statusengine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

// TestParseJetStream: the jetstream property, alone and with each of its
// block's properties; hostile or missing values are errors naming the
// line and the property.
func TestParseJetStream(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	empty := filepath.Join(dir, "empty")
	creds := filepath.Join(dir, "creds")
	notCreds := filepath.Join(dir, "notcreds")
	for name, body := range map[string]string{token: "s3cret\n", empty: "", notCreds: "hello",
		creds: "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ\n------END NATS USER JWT------\n"} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		input   string
		wantErr string // substring; "" means success
	}{
		{"statusengine {\njetstream nats://127.0.0.1:4222\n}", ""},
		{"statusengine {\njetstream nats://10.0.0.5:4222 nats://10.0.0.6:4222 {\nname ns1\nstream STATUSENGINE\nreplicas 3\nmax_age 400d\ncreds " + creds + "\ntls\n}\n}", ""},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nname ns1\ntoken_file " + token + "\n}\n}", ""},
		{"statusengine {\njetstream tls://ns.example.net:4222 {\nname ns1\nuser se s3cret\n}\n}", ""},
		{"statusengine {\njetstream nats://ns.example.net:4222 {\nname ns1\nuser se s3cret\ninsecure\n}\n}", ""},
		{"statusengine {\njetstream nats://ns.example.net:4222 {\nname ns1\ntoken_file " + token + "\n}\n}", "Testfile:2 - Error during parsing: jetstream: nats://ns.example.net:4222 would send the token or password in clear"},
		{"statusengine {\njetstream\n}", "Testfile:2 - Error during parsing: jetstream needs at least one URL"},
		{"statusengine {\njetstream http://127.0.0.1:4222\n}", `jetstream: "http://127.0.0.1:4222" is not a NATS URL`},
		{"statusengine {\njetstream nats://user:pw@127.0.0.1:4222\n}", "is not a NATS URL"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nreplicas 0\n}\n}", "Testfile:3 - Error during parsing: jetstream: replicas needs a number from 1 to 5"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nreplicas 100\n}\n}", "jetstream: replicas needs a number from 1 to 5"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nreplicas\n}\n}", "jetstream: replicas needs a number"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nmax_age -1\n}\n}", `Testfile:3 - Error during parsing: jetstream: max_age "-1" is not a duration`},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nmax_age 0s\n}\n}", `jetstream: max_age "0s" is not a duration`},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nmax_age 99999d\n}\n}", `jetstream: max_age "99999d"`},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nname ns1.example\n}\n}", "jetstream: name needs one name of letters"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nname a>\n}\n}", "jetstream: name needs one name"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nstream a*b\n}\n}", "jetstream: stream needs one name"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\ntoken_file " + missing + "\n}\n}", "Testfile:3 - Error during parsing: jetstream: token_file: open " + missing},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\ntoken_file " + empty + "\n}\n}", "is empty"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\ncreds " + missing + "\n}\n}", "jetstream: creds: open " + missing},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\ncreds " + notCreds + "\n}\n}", "is not a NATS credentials file"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\ntoken_file " + token + "\ncreds " + creds + "\n}\n}", "Testfile:4 - Error during parsing: jetstream: token_file, creds and user exclude each other"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nuser se\n}\n}", "jetstream: user needs NAME PASSWORD"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\ntls " + missing + " " + missing + "\n}\n}", "Testfile:3 - Error during parsing: jetstream: tls:"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\ntls a b c d\n}\n}", "jetstream: tls takes [CERT KEY] [CA]"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nname a\nname b\n}\n}", "jetstream: name specified more than once"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nbogus\n}\n}", `jetstream: unknown property "bogus"`},
		{"statusengine {\njetstream nats://127.0.0.1:4222 {\nname a\n", "jetstream: block is not closed"},
		{"statusengine {\njetstream nats://127.0.0.1:4222 x\n}", `jetstream: "x" is not a NATS URL`},
		{"statusengine {\njetstream nats://127.0.0.1:4222\njetstream nats://127.0.0.1:4223\n}", "jetstream specified more than once"},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
		_, err := parse(c)
		checkParseErr(t, i, err, tc.wantErr)
	}
}

// TestParseJetStreamDefaults: alone, the property publishes as the host
// name's first label to STATUSENGINE, made with 1 replica and 400 days.
func TestParseJetStreamDefaults(t *testing.T) {
	c := caddy.NewTestController("dns", "statusengine {\njetstream nats://127.0.0.1:4222\n}")
	c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
	se, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	jc := se.jetstream
	if jc == nil || jc.Name != host || jc.Stream != "STATUSENGINE" || jc.Replicas != 1 || jc.MaxAge != 400*24*time.Hour ||
		len(jc.URLs) != 1 || jc.URLs[0] != "nats://127.0.0.1:4222" || jc.Subject() != "statusengine."+host {
		t.Errorf("defaults: %+v", jc)
	}
}
