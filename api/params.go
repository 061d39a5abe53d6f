package api

import (
	"errors"
	"net/url"
	"strconv"
	"time"
)

// DefaultSpan is the range of a request that gives neither from nor to.
const DefaultSpan = 30 * 24 * time.Hour

// timeRange reads from and to (Unix seconds, both inclusive). Without to it
// ends now; without from it starts DefaultSpan before to.
func timeRange(q url.Values, now time.Time) (from, to time.Time, err error) {
	to = now.Truncate(time.Second)
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
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, errors.New(name + " must be a whole number from " + strconv.Itoa(min) + " to " + strconv.Itoa(max))
	}
	return n, nil
}

// oneOf reads a parameter that must be one of choices; def when absent.
func oneOf(q url.Values, name, def string, choices ...string) (string, error) {
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
