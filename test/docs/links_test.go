package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/statusengine/statusengine/internal/servertest"
)

// link is a Markdown link or image: its target is group 1. A target holds
// no space or closing parenthesis (none of ours does).
var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestRelativeLinks: every relative link of every Markdown file in the
// module (vendored front-end files aside) names a file or directory that
// exists, relative to the file that holds it, and a #fragment names a
// heading of that file (as GitHub makes its anchors). A file split or
// renamed, or a heading reworded, must take its links along.
func TestRelativeLinks(t *testing.T) {
	root, err := servertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range strings.Split(string(text), "\n") {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, fragment, _ := strings.Cut(target, "#")
				file := path
				if target != "" {
					file = filepath.Join(filepath.Dir(path), target)
				}
				checked++
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s:%d: link to %s: no such file", rel, i+1, m[1])
					continue
				}
				if fragment != "" && strings.HasSuffix(file, ".md") && !anchors(t, file)[fragment] {
					t.Errorf("%s:%d: link to %s: no heading makes the anchor #%s", rel, i+1, m[1], fragment)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no relative link found: the walk missed the Markdown files")
	}
	t.Logf("%d relative links checked", checked)
}

// nonAnchor is what GitHub drops from a heading to make its anchor.
var nonAnchor = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)

// anchors are the #fragments the headings of a Markdown file make: lower
// case, punctuation dropped, spaces as hyphens.
func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(text), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		out[strings.ReplaceAll(nonAnchor.ReplaceAllString(h, ""), " ", "-")] = true
	}
	return out
}
