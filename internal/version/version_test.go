package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	full := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/statusengine/statusengine", Version: "v0.0.0-20261125155501-26bcc70abcde+dirty"},
		Deps:      []*debug.Module{{Path: "github.com/coredns/coredns", Version: "v1.15.0"}},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "26bcc70abcdef0123456789abcdef0123456789a"},
			{Key: "vcs.time", Value: "2026-11-25T15:55:01Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	replaced := &debug.BuildInfo{
		Main: debug.Module{Version: "(devel)"},
		Deps: []*debug.Module{{Path: "github.com/coredns/coredns", Version: "v1.15.0", Replace: &debug.Module{Version: "v1.15.1"}}},
	}
	tests := []struct {
		name        string
		bi          *debug.BuildInfo
		ok          bool
		short, text string
	}{
		{"stamped", full, true, "statusengine v0.0.0-20261125155501-26bcc70abcde+dirty commit 26bcc70abcde-modified",
			"statusengine v0.0.0-20261125155501-26bcc70abcde+dirty\ncommit 26bcc70abcdef0123456789abcdef0123456789a (modified) of 2026-11-25T15:55:01Z\nCoreDNS v1.15.0, go1.26.8"},
		{"no vcs, replaced CoreDNS", replaced, true, "statusengine (devel) commit unknown", "commit unknown\nCoreDNS v1.15.1"},
		{"no build info", nil, false, "statusengine unknown commit unknown", "CoreDNS unknown"},
	}
	for _, tc := range tests {
		i := fromBuildInfo(tc.bi, tc.ok)
		if got := i.Short(); got != tc.short {
			t.Errorf("%s: Short() = %q, want %q", tc.name, got, tc.short)
		}
		if got := i.String(); !strings.Contains(got, tc.text) {
			t.Errorf("%s: String() = %q, want it to contain %q", tc.name, got, tc.text)
		}
	}
}
