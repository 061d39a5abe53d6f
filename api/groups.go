package api

import (
	"cmp"
	"slices"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// Bounds of the lists an answer names, whatever the number of distinct
// values that were sent (issue: 100,000 distinct server strings made a
// summary of 10 MiB): what a list leaves out is summed into "other".
const (
	// TopValues is how many values a breakdown names at most, and how many
	// versions adoption lists.
	TopValues = 25
	// MaxPoints is how many map points an answer names at most.
	MaxPoints = 1000
	// maxListText bounds the JSON text of the values one list names (a
	// beacon field may be a few hundred bytes, and "<" is escaped to six):
	// with TopValues it keeps a summary well under 256 KiB.
	maxListText = 16 << 10
)

// OtherName names the group a list folds what it leaves out into.
const OtherName = "other"

// Folded sums what a list leaves out: the groups under the public floor,
// and those past its top values.
type Folded struct {
	// Values is the number of distinct values folded.
	Values        int    `json:"values"`
	Reports       uint64 `json:"reports"`
	Installations uint64 `json:"installations"`
}

func (f *Folded) add(c store.Counts) {
	f.Values++
	f.Reports += c.Reports
	f.Installations += c.Installations
}

// entry is one group of a list: its key and counts.
type entry[K comparable] struct {
	key K
	c   store.Counts
}

// groups keeps m's groups in order — installations, then reports, then by
// cmpKey — that pass the floor f (or that exempt says need not), at most n
// of them and at most maxListText of their text (textLen); the rest it
// folds. Only the groups that pass are sorted: under a floor, a flood of
// one-installation values costs one pass over m.
func groups[K comparable](m map[K]store.Counts, f Floor, n int, cmpKey func(a, b K) int, textLen func(K) int, exempt func(K) bool) ([]entry[K], Folded) {
	var other Folded
	var pass []entry[K]
	for k, c := range m {
		if !f.passes(c) && (exempt == nil || !exempt(k)) {
			other.add(c)
			continue
		}
		pass = append(pass, entry[K]{k, c})
	}
	slices.SortFunc(pass, func(a, b entry[K]) int {
		return cmp.Or(cmp.Compare(b.c.Installations, a.c.Installations), cmp.Compare(b.c.Reports, a.c.Reports), cmpKey(a.key, b.key))
	})
	text := 0
	for i, e := range pass {
		if text += textLen(e.key); i == n || text > maxListText {
			for _, x := range pass[i:] {
				other.add(x.c)
			}
			return pass[:i], other
		}
	}
	return pass, other
}

// jsonLen bounds the length of s as a JSON string: encoding/json escapes
// <, > and & (and control characters) to six bytes.
func jsonLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '<', c == '>', c == '&', c >= 0x80:
			n += 6
		case c == '"', c == '\\':
			n += 2
		default:
			n++
		}
	}
	return n
}

func comboLen(c rollup.Combo) int {
	return jsonLen(c.Modsec) + jsonLen(c.Server) + jsonLen(c.APR) + jsonLen(c.PCRE) + jsonLen(c.Lua) + jsonLen(c.Libxml)
}
