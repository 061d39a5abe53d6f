package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// DefaultSpan is the range of a request that gives neither from nor to.
const DefaultSpan = 30 * 24 * time.Hour

// timeRange reads from and to (Unix seconds, both inclusive). Without to it
// ends now; without from it starts DefaultSpan before to.
func timeRange(q url.Values, now time.Time) (from, to time.Time, err error) {
	to = now.Truncate(time.Second)
	if err := once(q, "from", "to"); err != nil {
		return from, to, err
	}
	if v := q.Get("to"); v != "" {
		t, ok := parseTime(v)
		if !ok {
			return from, to, errors.New("to must be a Unix time in seconds")
		}
		to = t
	}
	from = to.Add(-DefaultSpan)
	if v := q.Get("from"); v != "" {
		t, ok := parseTime(v)
		if !ok {
			return from, to, errors.New("from must be a Unix time in seconds")
		}
		from = t
	}
	if to.Before(from) {
		return from, to, errors.New("to is before from")
	}
	return from.UTC(), to.UTC(), nil
}

// intParam reads a whole number in [min, max], def when absent.
func intParam(q url.Values, name string, def, min, max int) (int, error) {
	if err := once(q, name); err != nil {
		return 0, err
	}
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || !digits(v) || n < min || n > max {
		return 0, errors.New(name + " must be a whole number from " + strconv.Itoa(min) + " to " + strconv.Itoa(max))
	}
	return n, nil
}

// oneOf reads a parameter that must be one of choices; def when absent.
func oneOf(q url.Values, name, def string, choices ...string) (string, error) {
	if err := once(q, name); err != nil {
		return "", err
	}
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	for _, c := range choices {
		if v == c {
			return v, nil
		}
	}
	msg := name + " must be one of"
	for i, c := range choices {
		if i > 0 {
			msg += ","
		}
		msg += " " + c
	}
	return "", errors.New(msg)
}

// endOf is the last instant of the second t names: to is inclusive.
func endOf(t time.Time) time.Time { return t.Add(time.Second - 1) }

// cursorParam reads the reports cursor, a record key in hex; 0 when absent.
// Anything that is not a key a record can have is refused, rather than
// wrapped around to the first record.
func cursorParam(q url.Values) (uint64, error) {
	return hexParam(q, "cursor", "cursor must be a next_cursor from an earlier response", record.ParseKey)
}

// hexParam reads the cursor parameter name, at most once: 0 when absent,
// else what parse makes of at most 16 hex digits (no sign, no 0x), or msg.
func hexParam(q url.Values, name, msg string, parse func(string) (uint64, error)) (uint64, error) {
	if err := once(q, name); err != nil {
		return 0, err
	}
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := parse(v)
	if err != nil || len(v) > 16 || !hexDigits(v) {
		return 0, errors.New(msg)
	}
	return n, nil
}

// once refuses a parameter given more than once: which one would count?
func once(q url.Values, names ...string) error {
	for _, n := range names {
		if len(q[n]) > 1 {
			return errors.New(n + " is given more than once")
		}
	}
	return nil
}

// digits tells whether s is decimal digits only (no sign, no space).
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func hexDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if (s[i] < '0' || s[i] > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

// rangeOf reads r's from and to, then clamps from to the first day the
// rollups count: a range that starts before the data (from=0) starts with
// it, so that it covers no empty years.
func (s *Server) rangeOf(r *http.Request) (from, to time.Time, err error) {
	from, to, err = timeRange(r.URL.Query(), time.Now())
	if err != nil {
		return from, to, err
	}
	return clampFrom(s.storeOf(r), from, to), to, nil
}

// clampFrom is from, or the first day st counts when from is before it and
// to is not.
func clampFrom(st *store.Store, from, to time.Time) time.Time {
	if first, ok := st.FirstDay(); ok && from.Before(first) && !to.Before(first) {
		return first
	}
	return from
}
