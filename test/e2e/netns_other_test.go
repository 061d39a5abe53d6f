//go:build !linux

package e2e

import (
	"context"
	"errors"
	"net"
)

func dialInNetns(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	return nil, errors.New("network namespaces need Linux")
}
