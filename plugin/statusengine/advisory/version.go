package advisory

import (
	"strconv"
	"strings"
)

// maxParts bounds the numbers of a version: more is no version anyone ships.
const maxParts = 8

// Version is a numeric dotted version: "2.9.7" is {2, 9, 7}. Missing
// trailing parts are zero, so "2.4" equals "2.4.0".
type Version struct {
	parts [maxParts]uint32
	n     int
}

// ParseVersion reads a numeric dotted version: one to eight numbers of at
// most nine digits, separated by dots, nothing else. Anything else (a
// suffix such as "-dev" or "rc1", a Debian revision, a word) does not
// parse: such a version is unknown, never affected.
func ParseVersion(s string) (Version, bool) {
	var v Version
	if s == "" || len(s) > 64 {
		return v, false
	}
	for _, p := range strings.Split(s, ".") {
		if p == "" || len(p) > 9 || v.n == maxParts {
			return Version{}, false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return Version{}, false
			}
		}
		n, _ := strconv.ParseUint(p, 10, 32)
		v.parts[v.n] = uint32(n)
		v.n++
	}
	return v, true
}

// Compare is -1, 0 or +1 as v is lower than, equal to or higher than w.
func (v Version) Compare(w Version) int {
	for i := 0; i < maxParts; i++ {
		switch {
		case v.parts[i] < w.parts[i]:
			return -1
		case v.parts[i] > w.parts[i]:
			return 1
		}
	}
	return 0
}

// Major is the first number.
func (v Version) Major() uint32 { return v.parts[0] }

// String writes v as it was parsed (leading zeros dropped).
func (v Version) String() string {
	var b strings.Builder
	for i := 0; i < v.n; i++ {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatUint(uint64(v.parts[i]), 10))
	}
	return b.String()
}
