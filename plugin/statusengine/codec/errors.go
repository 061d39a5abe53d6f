package codec

import "errors"

// Decode errors. Every error Decode and ParseBeacon return matches one of
// these with errors.Is; Outcome maps them onto metric labels.
var (
	// ErrNotInZone means the query name is neither the zone nor below it.
	ErrNotInZone = errors.New("name not in zone")
	// ErrPartial means the name is one that QNAME minimisation produces on
	// the way to a report: the apex, "<epoch>.zone", or a tail of a report
	// name. It must be answered but never stored.
	ErrPartial = errors.New("partial name")
	// ErrNotBase32 means a data label holds a character outside the RFC 4648
	// alphabet A-Z2-7 (in any case), a label is empty, or the base32 length
	// is impossible.
	ErrNotBase32 = errors.New("data labels are not unpadded base32")
	// ErrFieldCount means the beacon has fewer than 7 comma-separated fields.
	ErrFieldCount = errors.New("beacon has fewer than 7 fields")
	// ErrFieldGrammar means a field, or the beacon as a whole, does not fit
	// its grammar. The returned error names the field and wraps this one.
	ErrFieldGrammar = errors.New("field does not fit its grammar")
	// ErrEpoch means the all-digit label above the zone is not a plausible
	// unix time: more than 12 digits.
	ErrEpoch = errors.New("implausible epoch label")
	// ErrTooLong means the name is longer than the 253 octets a DNS name can
	// hold in presentation form; the client's resolver never sends one.
	ErrTooLong = errors.New("name longer than 253 octets")
)

// grammarError names the field that failed; it is preallocated for each
// field so that rejecting garbage in the hot path does not allocate.
type grammarError struct{ msg string }

func (e *grammarError) Error() string { return e.msg }
func (e *grammarError) Unwrap() error { return ErrFieldGrammar }

func newGrammarError(field string) error {
	return &grammarError{msg: ErrFieldGrammar.Error() + ": " + field}
}

var (
	errBeaconLong  = newGrammarError("beacon longer than 400 bytes")
	errBeaconBytes = newGrammarError("beacon not printable ascii")
	errModsec      = newGrammarError("modsec")
	errServer      = newGrammarError("server")
	errAPR         = newGrammarError("apr")
	errPCRE        = newGrammarError("pcre")
	errLua         = newGrammarError("lua")
	errLibxml      = newGrammarError("libxml")
	errID          = newGrammarError("id")
)

// Outcome returns the metric label for a Decode error: "partial" for
// ErrPartial, "malformed" for any other error and "" for nil.
func Outcome(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrPartial):
		return "partial"
	default:
		return "malformed"
	}
}
