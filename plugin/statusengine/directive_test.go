package statusengine

import (
	"slices"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
)

func TestAddDirective(t *testing.T) {
	AddDirective()
	AddDirective() // a second call must not list it twice
	d := dnsserver.Directives
	i := slices.Index(d, "template")
	if i < 0 || i+1 >= len(d) || d[i+1] != pluginName {
		t.Fatalf("statusengine is not right after template: %v", d)
	}
	if n := len(slices.DeleteFunc(slices.Clone(d), func(s string) bool { return s != pluginName })); n != 1 {
		t.Fatalf("statusengine listed %d times", n)
	}
}
