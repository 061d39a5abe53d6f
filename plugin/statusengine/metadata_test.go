package statusengine

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/metadata"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

func TestMetadata(t *testing.T) {
	se := newTestEngine(t)
	m := new(dns.Msg)
	m.SetQuestion(realName, dns.TypeA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	ctx := metadata.ContextWithMetadata(context.Background())
	ctx = se.Metadata(ctx, request.Request{W: rec, Req: m})
	se.ServeDNS(ctx, rec, m)

	tests := map[string]string{
		"statusengine/modsec": "2.9.7",
		"statusengine/server": "Apache/2.4.71 (Debian)",
		"statusengine/apr":    "1.7.2",
		"statusengine/pcre":   "",
		"statusengine/lua":    "Lua 5.1",
		"statusengine/libxml": "2.9.14",
		"statusengine/id":     "75",
	}
	for label, want := range tests {
		f := metadata.ValueFunc(ctx, label)
		if f == nil {
			t.Errorf("%s not published", label)
			continue
		}
		if got := f(); got != want {
			t.Errorf("%s = %q, want %q", label, got, want)
		}
	}
}
