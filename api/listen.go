package api

import (
	"net"
)

// SendBuffer is the kernel send buffer asked for each connection of the side
// listener (Linux doubles it). It bounds what a client that reads slowly
// holds in the kernel, and the head start such a client gets toward MinRate.
const SendBuffer = 128 << 10

// Listen binds the side listener's TCP address. It is exclusive: without
// SO_REUSEPORT, an address another process (or another listener) holds is an
// error, never a second server sharing the connections with it.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tl, ok := ln.(*net.TCPListener); ok {
		return bufferedListener{tl}, nil
	}
	return ln, nil
}

// bufferedListener sets SendBuffer on every connection it accepts.
type bufferedListener struct{ *net.TCPListener }

func (l bufferedListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	c.SetWriteBuffer(SendBuffer)
	return c, nil
}
