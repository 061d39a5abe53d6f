//go:build !linux

package netnstest

import "errors"

// Do fails: network namespaces need Linux.
func (n *NS) Do(fn func()) error {
	return errors.New("network namespaces need Linux")
}
