package statusengine

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	ctls "github.com/coredns/coredns/plugin/pkg/tls"

	"github.com/statusengine/statusengine/plugin/statusengine/fleet"
)

// jetstreamConfig is the jetstream property: fleet.Config, and whether
// the operator said insecure (checkJetStreamClear).
type jetstreamConfig struct {
	fleet.Config
	insecure bool // a token or password may cross the network in clear
}

// Bounds of the jetstream block's values.
const (
	maxJetStreamReplicas = 5 // JetStream's most
	maxJetStreamAge      = 100 * 366 * 24 * time.Hour
)

// natsName is what a server name and a stream name may hold: NATS allows
// no dot, wildcard, slash or white space in either (a name is a token of
// the subject this server publishes under).
var natsName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// parseJetStream reads `jetstream URL... [{ name NAME; stream NAME;
// replicas N; max_age DURATION; token_file FILE | creds FILE | user NAME
// PASSWORD; tls [CERT KEY] [CA]; insecure }]`; args are the URLs of NATS
// servers (nats:// or tls://, one cluster's). Alone it publishes as the
// host name to stream STATUSENGINE (made with 1 replica and max_age 400d
// when missing). A token or password is sent only over TLS or to a
// loopback address, unless insecure.
func parseJetStream(c *caddy.Controller, se *StatusEngine, args []string) error {
	jc := &jetstreamConfig{Config: fleet.Config{Stream: fleet.DefaultStream, Replicas: fleet.DefaultReplicas,
		MaxAge: fleet.DefaultMaxAge}}
	line := c.Line()
	block, err := openBlock(c, "jetstream")
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return c.Errf("jetstream needs at least one URL (a NATS server, e.g. nats://127.0.0.1:4222)")
	}
	for _, a := range args {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Hostname() == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return c.Errf("jetstream: %q is not a NATS URL (nats://HOST:PORT or tls://HOST:PORT, credentials in the block)", a)
		}
		jc.URLs = append(jc.URLs, u.Scheme+"://"+u.Host)
	}
	if block {
		seen := map[string]bool{}
		err := parseNested(c, "jetstream", func(property string) error {
			if seen[property] {
				return c.Errf("jetstream: %s specified more than once", property)
			}
			seen[property] = true
			return parseJetStreamProperty(c, jc, seen, property, c.RemainingArgs())
		})
		if err != nil {
			return err
		}
	}
	if jc.Name == "" {
		host, err := os.Hostname()
		host, _, _ = strings.Cut(host, ".")
		if err != nil || !natsName.MatchString(host) {
			return fmt.Errorf("%s:%d - Error during parsing: jetstream: the host name %q cannot name this server in the stream: give name NAME", c.File(), line, host)
		}
		jc.Name = host
	}
	if err := checkJetStreamClear(jc); err != nil {
		return fmt.Errorf("%s:%d - Error during parsing: jetstream: %v", c.File(), line, err)
	}
	se.jetstream = jc
	return nil
}

// parseJetStreamProperty reads one property of the jetstream block, given
// its arguments; seen holds the properties read so far, this one included.
func parseJetStreamProperty(c *caddy.Controller, jc *jetstreamConfig, seen map[string]bool, property string, vals []string) error {
	switch property {
	case "name", "stream":
		if len(vals) != 1 || !natsName.MatchString(vals[0]) {
			return c.Errf("jetstream: %s needs one name of letters, digits, _ and - (at most 64)", property)
		}
		if property == "name" {
			jc.Name = vals[0]
		} else {
			jc.Stream = vals[0]
		}
	case "replicas":
		n, err := strconv.Atoi(strings.Join(vals, " "))
		if len(vals) != 1 || err != nil || n < 1 || n > maxJetStreamReplicas {
			return c.Errf("jetstream: replicas needs a number from 1 to %d", maxJetStreamReplicas)
		}
		jc.Replicas = n
	case "max_age":
		if len(vals) != 1 {
			return c.Errf("jetstream: max_age needs one duration like 400d or 12h")
		}
		d, err := parseDays(vals[0])
		if err != nil || d < time.Minute || d > maxJetStreamAge {
			return c.Errf("jetstream: max_age %q is not a duration from 1m to 100 years, like 400d or 12h", vals[0])
		}
		jc.MaxAge = d
	case "token_file", "creds", "user":
		return parseJetStreamAuth(c, jc, seen, property, vals)
	case "tls":
		if len(vals) > 3 {
			return c.Errf("jetstream: tls takes [CERT KEY] [CA]")
		}
		cfg, err := ctls.NewTLSConfigFromArgs(vals...)
		if err != nil {
			return c.Errf("jetstream: tls: %v", err)
		}
		jc.TLS = cfg
	case "insecure":
		if len(vals) != 0 {
			return c.Errf("jetstream: insecure takes no value")
		}
		jc.insecure = true
	default:
		return c.Errf("jetstream: unknown property %q", property)
	}
	return nil
}

// parseJetStreamAuth reads the one way this server proves itself to NATS:
// token_file FILE, creds FILE (a credentials file: JWT and NKey seed) or
// user NAME PASSWORD.
func parseJetStreamAuth(c *caddy.Controller, jc *jetstreamConfig, seen map[string]bool, property string, vals []string) error {
	n := 0
	for _, p := range []string{"token_file", "creds", "user"} {
		if seen[p] {
			n++
		}
	}
	if n > 1 {
		return c.Errf("jetstream: token_file, creds and user exclude each other")
	}
	switch property {
	case "token_file":
		if len(vals) != 1 || vals[0] == "" {
			return c.Errf("jetstream: token_file needs one file name")
		}
		tok, err := readTokenFile(c, "jetstream", property, vals[0])
		if err != nil {
			return err
		}
		jc.Token = tok
	case "creds":
		if len(vals) != 1 || vals[0] == "" {
			return c.Errf("jetstream: creds needs one file name (a NATS credentials file)")
		}
		b, err := os.ReadFile(vals[0])
		if err != nil {
			return c.Errf("jetstream: creds: %v", err)
		}
		if !strings.Contains(string(b), "-----BEGIN NATS USER JWT-----") {
			return c.Errf("jetstream: creds %q is not a NATS credentials file (no user JWT)", vals[0])
		}
		jc.Creds = vals[0]
	case "user":
		if len(vals) != 2 || vals[0] == "" || vals[1] == "" {
			return c.Errf("jetstream: user needs NAME PASSWORD")
		}
		jc.User, jc.Password = vals[0], vals[1]
	}
	return nil
}

// checkJetStreamClear refuses a token or a password sent in clear across
// the network: to a nats:// URL of a host that is not a loopback address,
// without tls and without insecure. (A creds file proves itself by
// signing a challenge: nothing secret crosses.)
func checkJetStreamClear(jc *jetstreamConfig) error {
	if (jc.Token == "" && jc.User == "") || jc.insecure || jc.TLS != nil {
		return nil
	}
	for _, raw := range jc.URLs {
		u, _ := url.Parse(raw)
		if u.Scheme == "nats" && !loopbackHost(u.Hostname()) {
			return fmt.Errorf("%s would send the token or password in clear: use tls:// or a tls property, or say insecure to allow it", raw)
		}
	}
	return nil
}
