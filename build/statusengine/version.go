package main

import (
	"fmt"

	"github.com/statusengine/statusengine/internal/version"
)

func runVersion(e *env, args []string) error {
	fs := newFlags(e, "version")
	pos, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError(fs, "unexpected argument %q", pos[0])
	}
	fmt.Fprint(e.stdout, version.Get())
	return nil
}
