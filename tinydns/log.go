// Package tinydns reads the query log of djbdns's tinydns, the server the
// original 2014 status collector ran, and imports the status reports in it.
//
// tinydns writes one line per query to standard error (qlog.c):
//
//	7f000001:ebcc:ff48 + 0001 gixdslrx....1795549302.status.modsecurity.org
//
// client IP (8 hex digits, 32 with the IPv6 patch), client port and query id
// in hex; the result (+ answered, - not answered, I not implemented, C bad
// class, / unparsable packet); the query type in hex; the name in lower case
// with bytes outside [a-z0-9_-] written as \ooo octal. Under daemontools the
// line is prefixed by multilog's or tai64n's "@" TAI64N label, or by the
// local time tai64nlocal turns that into.
package tinydns

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Entry is one query line of a tinydns log.
type Entry struct {
	Time    time.Time // zero when the line had no timestamp
	Client  netip.Addr
	Port    uint16
	ID      uint16
	Result  byte // '+', '-', 'I', 'C' or '/'
	QType   uint16
	Name    string // as logged: lower case, no trailing dot, "." for the root
	HasTime bool
}

// Errors ParseLine returns.
var (
	// ErrNotQuery means the line is one of tinydns's own messages
	// ("starting tinydns") rather than a query.
	ErrNotQuery = errors.New("not a query line")
	// ErrMalformed means the line looks like neither.
	ErrMalformed = errors.New("malformed log line")
)

// tai64Epoch is the TAI64 label of 1970-01-01 00:00:00 UTC as daemontools
// writes it: 2^62 plus the 10 s TAI-UTC offset of 1970 (leap seconds since
// are ignored, as tai64nlocal ignores them).
const tai64Epoch = 1<<62 + 10

// localLayout is what tai64nlocal prints in place of the TAI64N label.
const localLayout = "2006-01-02 15:04:05.000000000"

// ParseLine parses one log line, without its newline. loc is the time zone
// of tai64nlocal timestamps (nil means time.Local).
func ParseLine(line string, loc *time.Location) (Entry, error) {
	var e Entry
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "@"):
		if len(line) < 26 || line[25] != ' ' {
			return e, ErrMalformed
		}
		t, ok := parseTAI64N(line[1:25])
		if !ok {
			return e, ErrMalformed
		}
		e.Time, e.HasTime = t, true
		line = line[26:]
	case len(line) > len(localLayout) && line[4] == '-' && line[10] == ' ' && line[len(localLayout)] == ' ':
		if loc == nil {
			loc = time.Local
		}
		t, err := time.ParseInLocation(localLayout, line[:len(localLayout)], loc)
		if err != nil {
			return e, ErrMalformed
		}
		e.Time, e.HasTime = t.UTC(), true
		line = line[len(localLayout)+1:]
	}

	// hexip:port:id result qtype name
	fields := strings.SplitN(line, " ", 4)
	if len(fields) != 4 {
		if strings.Count(fields[0], ":") != 2 {
			return e, ErrNotQuery
		}
		return e, ErrMalformed
	}
	addr := strings.Split(fields[0], ":")
	if len(addr) != 3 {
		return e, ErrNotQuery
	}
	ip, err := hex.DecodeString(addr[0])
	if err != nil || (len(ip) != 4 && len(ip) != 16) {
		return e, ErrMalformed
	}
	e.Client, _ = netip.AddrFromSlice(ip)
	e.Client = e.Client.Unmap()
	port, err1 := strconv.ParseUint(addr[1], 16, 16)
	id, err2 := strconv.ParseUint(addr[2], 16, 16)
	qtype, err3 := strconv.ParseUint(fields[2], 16, 16)
	if err1 != nil || err2 != nil || err3 != nil || len(fields[1]) != 1 || len(fields[2]) != 4 {
		return e, ErrMalformed
	}
	e.Port, e.ID, e.QType, e.Result = uint16(port), uint16(id), uint16(qtype), fields[1][0]
	if e.Name, err = unescape(fields[3]); err != nil {
		return e, err
	}
	return e, nil
}

func parseTAI64N(s string) (time.Time, bool) {
	if len(s) != 24 {
		return time.Time{}, false
	}
	sec, err1 := strconv.ParseUint(s[:16], 16, 64)
	nsec, err2 := strconv.ParseUint(s[16:], 16, 32)
	if err1 != nil || err2 != nil || nsec >= 1e9 || sec < tai64Epoch || sec-tai64Epoch >= 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(int64(sec-tai64Epoch), int64(nsec)).UTC(), true
}

// unescape undoes qlog's \ooo octal escapes.
func unescape(s string) (string, error) {
	if s == "" {
		return "", ErrMalformed
	}
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", ErrMalformed
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", ErrMalformed
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}
