package api

import (
	"net/http"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// Floor is the public floor (the api block's public_min): in an answer to a
// request without the token, a group — a breakdown value, a version
// combination, a country, a map point, a series, an adoption row — is shown
// only when it holds at least Installations installations seen from at
// least Networks distinct resolver networks in the range (store.Counts). Smaller groups fold
// into "other", so totals still add up. It keeps small groups, which could
// single out one site, private, and it keeps one network (one resolver, or
// one attacker) from setting a public figure by itself.
type Floor struct {
	Installations uint64 `json:"installations"`
	Networks      uint64 `json:"networks"`
}

// DefaultFloor is public_min's default: 5 installations from 2 networks.
var DefaultFloor = Floor{Installations: 5, Networks: 2}

// NoFloor shows every group: what requests with the token see, and what
// "public_min 1 1" gives everybody.
var NoFloor = Floor{Installations: 1, Networks: 1}

// Bounds of public_min: Counts.Networks counts up to store.NetworkCap.
const (
	MaxFloorInstallations = 1000000
	MaxFloorNetworks      = store.NetworkCap
)

// off tells whether the floor lets every group through.
func (f Floor) off() bool { return f.Installations <= 1 && f.Networks <= 1 }

// passes tells whether a group with counts c may be shown.
func (f Floor) passes(c store.Counts) bool {
	return f.off() || (c.Installations >= f.Installations && c.Networks >= f.Networks)
}

// floorOf is the floor of r's answer: none for a request proven to hold the
// token, the configured one for every other request — also when no token is
// configured, since the floor guards public figures against poisoning, not
// only private data.
func (s *Server) floorOf(r *http.Request) Floor {
	if s.tokenHolder(r) {
		return NoFloor
	}
	return s.configOf(r).PublicMin
}
