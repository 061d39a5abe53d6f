package main

import (
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, out, _ := cli(t, "", args...)
		if code != 0 || !strings.HasPrefix(out, "statusengine ") || !strings.Contains(out, "\ncommit ") || !strings.Contains(out, "CoreDNS v1.15") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	if code, _, _ := cli(t, "", "version", "extra"); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}
