package statusengine

import (
	"errors"
	"fmt"
)

var (
	errTTLRange   = errors.New("must be between 0 and 604800 seconds")
	errSizeSyntax = errors.New("not a size in bytes with an optional K, M, G or T suffix")
)

func errTTLSyntax(s string) error {
	return fmt.Errorf("%q is neither seconds nor a duration like 1m", s)
}
