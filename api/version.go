package api

import (
	"cmp"
	"strings"
)

// compareVersions orders dotted versions numerically ("2.9.10" > "2.9.8");
// a part without leading digits ranks below any number. It allocates
// nothing: adoption compares every version sent against a few.
func compareVersions(a, b string) int {
	for {
		pa, ra, moreA := strings.Cut(a, ".")
		pb, rb, moreB := strings.Cut(b, ".")
		if c := comparePart(pa, pb); c != 0 {
			return c
		}
		if !moreA || !moreB {
			// "2.9" < "2.9.0": the longer one is more specific.
			return cmp.Compare(boolInt(moreA), boolInt(moreB))
		}
		a, b = ra, rb
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// comparePart compares the leading digits as numbers, then the rest as text.
func comparePart(x, y string) int {
	nx, rx := leadingDigits(x)
	ny, ry := leadingDigits(y)
	if len(nx) != len(ny) {
		if len(nx) < len(ny) {
			return -1
		}
		return 1
	}
	if c := strings.Compare(nx, ny); c != 0 {
		return c
	}
	// "2.9.8" ranks above "2.9.8-rc1": a suffix is a pre-release.
	switch {
	case rx == ry:
		return 0
	case rx == "":
		return 1
	case ry == "":
		return -1
	}
	return strings.Compare(rx, ry)
}

func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return strings.TrimLeft(s[:i], "0"), s[i:]
}
