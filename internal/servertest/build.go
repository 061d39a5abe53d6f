// Package servertest builds the CoreDNS binary under test and watches the
// processes a test starts, so that the test stops them by their own pid
// with bounded waits.
package servertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

const modulePath = "github.com/statusengine/statusengine"

// ModuleRoot is the directory of this module's go.mod, found from the
// working directory (a test's package directory, as go test runs it) up.
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if gm, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			bytes.Contains(gm, []byte("module "+modulePath+"\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of module %s in %s or above", modulePath, wd)
		}
	}
}

// Build builds ./build/coredns of the module at root into out with the go
// program goCmd, and returns the build's output.
func Build(ctx context.Context, goCmd, root, out string) ([]byte, error) {
	return BuildPackage(ctx, goCmd, root, "./build/coredns", out)
}

// BuildPackage builds the main package pkg (a path relative to root, such
// as ./build/statusengine) into out, and returns the build's output.
func BuildPackage(ctx context.Context, goCmd, root, pkg, out string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, goCmd, "-C", root, "build", "-o", out, pkg)
	cmd.WaitDelay = 2 * time.Second
	return cmd.CombinedOutput()
}
