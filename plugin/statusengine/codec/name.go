package codec

import "strings"

// maxName is the longest DNS name in presentation form, trailing dot
// excluded. It also bounds the stack buffer Decode decodes into.
const maxName = 253

// maxEpochDigits keeps the epoch label within plausible unix times (and far
// from int64 overflow).
const maxEpochDigits = 12

// b32val maps a byte to its RFC 4648 base32 value, either case, or 0xff.
var b32val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" {
		t[c] = byte(i)
		t[c|0x20] = byte(i) // no-op for digits
	}
	return t
}()

// Decode decodes a status report name. qname and zone are domain names in
// any letter case, with or without the trailing dot; resolvers randomise
// the case of every letter (0x20), so matching ignores it.
//
// The label right above the zone is the client epoch when it is all
// digits; otherwise the name has none, as the 2014 collector allowed. The
// other labels are joined, whatever their lengths, and decoded as unpadded
// base32. On success the only allocation is the beacon string; every field
// is a substring of it.
func Decode(qname, zone string) (Report, error) {
	var r Report
	if err := DecodeTo(&r, qname, zone); err != nil {
		return Report{}, err
	}
	return r, nil
}

// DecodeTo is Decode into *r, which the caller allocates (the record the
// report goes into): a Report returned by value through every call would
// take room on the stack of each, and every query runs this on a fresh
// goroutine stack, which the runtime grows by copying when it is short.
// On an error *r is left zero.
func DecodeTo(r *Report, qname, zone string) error {
	data, epoch, hasEpoch, err := splitName(qname, zone)
	if err != nil {
		return err
	}

	var buf [maxName*5/8 + 1]byte
	n, err := decodeBase32(buf[:], data)
	if err != nil {
		// A tail of a Windows name (30-character labels) starts off a byte
		// boundary and often has a length no encoder produces.
		if err == errBadLength && hasEpoch {
			return ErrPartial
		}
		return ErrNotBase32
	}

	if err := parseBeacon(r, string(buf[:n])); err != nil {
		*r = Report{}
		if couldBeTail(data) {
			return ErrPartial
		}
		return err
	}
	r.Epoch, r.HasEpoch = epoch, hasEpoch
	return nil
}

// splitName matches qname to zone and takes the client epoch label off the
// labels below the zone: data is the dotted base32 labels. Both decoders
// (ModSecurity's, DecodeTo, and a schema's, DecodeSchema) start here, so
// they tell partial, foreign and overlong names apart the same way.
func splitName(qname, zone string) (data string, epoch int64, hasEpoch bool, err error) {
	q := strings.TrimSuffix(qname, ".")
	z := strings.TrimSuffix(zone, ".")

	var rest string
	switch {
	case z == "": // root zone: every name is below it
		if q == "" {
			return "", 0, false, ErrPartial
		}
		rest = q
	case len(q) == len(z) && equalFoldASCII(q, z):
		return "", 0, false, ErrPartial
	case len(q) > len(z) && q[len(q)-len(z)-1] == '.' && equalFoldASCII(q[len(q)-len(z):], z):
		rest = q[:len(q)-len(z)-1]
	default:
		return "", 0, false, ErrNotInZone
	}
	if len(q) > maxName {
		return "", 0, false, ErrTooLong
	}

	data = rest
	// An all-digit data label cannot be mistaken for the epoch in a name
	// the client builds: a 32-character label starts on a 5-byte group,
	// whose first character encodes the top bits of a printable ASCII byte
	// and so is a letter (A-P).
	dot := strings.LastIndexByte(rest, '.')
	if last := rest[dot+1:]; allDigits(last) {
		if len(last) > maxEpochDigits {
			return "", 0, false, ErrEpoch
		}
		for i := 0; i < len(last); i++ {
			epoch = epoch*10 + int64(last[i]-'0')
		}
		if dot < 0 {
			return "", 0, false, ErrPartial // "<epoch>.zone", the first minimised query
		}
		data = rest[:dot]
		hasEpoch = true
	}
	return data, epoch, hasEpoch, nil
}

// couldBeTail tells a QNAME minimisation tail from a malformed report, for
// data labels whose plaintext did not parse. A tail decodes to the end of a
// real beacon: it ends with a valid id, the fields between its commas are
// complete and valid, and only its leftmost piece is cut, anywhere. With no
// comma at all it must be a proper suffix of an id; a whole 40-hex string is
// a complete non-beacon (malformed). Six commas or more make a complete
// beacon that failed its grammar: malformed, although a 2.8.0 server
// signature holding commas could in theory make that a tail too.
//
// A tail of a Windows name (30-character labels) starts off a byte
// boundary, so the bit stream is also tried from bit 2, 4 and 6; the right
// alignment is the one after which the last byte leaves fewer than 5 zero
// bits, as the client's encoder does.
//
// The heuristic only picks the metric label: neither kind is ever stored.
// It runs on the error path only, and is not inlined, so that its buffer
// does not grow Decode's stack frame: every query runs Decode on a fresh
// goroutine stack, and a larger frame makes the runtime grow (copy) it.
//
//go:noinline
func couldBeTail(data string) bool {
	var buf [maxName*5/8 + 1]byte
	for shift := 0; shift < 8; shift += 2 {
		if n, ok := decodeShifted(buf[:], data, shift); ok && plausibleTail(string(buf[:n])) {
			return true
		}
	}
	return false
}

// decodeShifted decodes already validated base32 labels, skipping the
// first shift bits, and reports whether the bits left over are canonical.
func decodeShifted(dst []byte, s string, shift int) (int, bool) {
	var (
		acc  uint
		bits int
		n    int
	)
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			continue
		}
		acc = acc<<5 | uint(b32val[s[i]])
		bits += 5
		if shift > 0 {
			d := min(shift, bits)
			bits -= d
			shift -= d
		}
		if bits >= 8 {
			bits -= 8
			dst[n] = byte(acc >> bits)
			n++
		}
	}
	return n, n > 0 && bits < 5 && acc&(1<<bits-1) == 0
}

const noID = "no unique id"

func plausibleTail(text string) bool {
	for i := 0; i < len(text); i++ {
		if c := text[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	last := strings.LastIndexByte(text, ',')
	if last < 0 {
		if len(text) < len(noID) && strings.HasSuffix(noID, text) {
			return true
		}
		return len(text) < 40 && isLowerHex(text)
	}
	if !validID(strings.TrimSpace(text[last+1:])) {
		return false
	}
	// Walk the complete fields right to left: libxml, lua, pcre, apr.
	end := last
	f2014 := false
	for k := 1; ; k++ {
		i := strings.LastIndexByte(text[:end], ',')
		if i < 0 {
			return true // text[:end] is the cut leftmost piece
		}
		if k == 5 {
			return false // six commas: a whole beacon, not a tail
		}
		field := text[i+1 : end]
		switch k {
		case 1:
			c, l, found := strings.Cut(field, "/")
			f2014 = found
			if !validVersion(strings.TrimSpace(c)) || (found && !validVersion(strings.TrimSpace(l))) {
				return false
			}
		case 2:
			if f2014 {
				c, l, found := strings.Cut(field, "/")
				if !found || !validLua(strings.TrimSpace(c)) || !validLua(strings.TrimSpace(l)) {
					return false
				}
			} else if !validLua(strings.TrimSpace(field)) {
				return false
			}
		case 3:
			if _, _, ok := versionPair(field, true); !ok {
				return false
			}
		case 4:
			if _, _, ok := versionPair(field, false); !ok {
				return false
			}
		}
		end = i
	}
}

type decodeError string

func (e decodeError) Error() string { return string(e) }

const (
	errBadChar   decodeError = "bad base32 character or empty label"
	errBadLength decodeError = "impossible base32 length"
)

// decodeBase32 decodes the unpadded base32 in the dot-separated labels of
// s into dst, which must hold len(s)*5/8 bytes. Leftover bits after the
// last full byte are ignored, as Go's and Python's decoders do.
func decodeBase32(dst []byte, s string) (int, error) {
	var (
		acc   uint
		bits  uint
		n     int
		chars int
	)
	prevDot := true // a leading dot is an empty label
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if prevDot {
				return 0, errBadChar
			}
			prevDot = true
			continue
		}
		prevDot = false
		v := b32val[c]
		if v == 0xff {
			return 0, errBadChar
		}
		acc = acc<<5 | uint(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			dst[n] = byte(acc >> bits)
			n++
		}
		chars++
	}
	if prevDot {
		return 0, errBadChar // empty input or trailing empty label
	}
	switch chars % 8 {
	case 1, 3, 6:
		return 0, errBadLength
	}
	return n, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// equalFoldASCII compares a and b, of equal length, folding only ASCII
// letters: DNS names compare case-insensitively byte by byte, and
// strings.EqualFold would also fold Unicode (e.g. the Kelvin sign to k).
func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || !isAlpha(x) {
			return false
		}
	}
	return true
}
