package api

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"text/template"
)

// Badges: shields-style SVG images (a grey label, a coloured value) of the
// public figures of a range (the last 30 days by default), for READMEs and
// dashboards elsewhere. They are public and cached by anyone for
// badgeMaxAge, so they always show what the public floor lets through,
// whoever asks.
const badgeMaxAge = 300

// Colours of badge values.
const (
	badgeGreen  = "#4c1"
	badgeYellow = "#dfb317"
	badgeOrange = "#fe7d37"
	badgeBlue   = "#007ec6"
	badgeGrey   = "#9f9f9f"
)

// badges maps each badge's path to what it shows of a summary.
var badges = map[string]func(*Summary) (label, value, color string){
	"/badge/latest.svg": func(s *Summary) (string, string, string) {
		if s.LatestModsec == "" {
			return "latest ModSecurity", "no data", badgeGrey
		}
		return "latest ModSecurity", s.LatestModsec, badgeBlue
	},
	"/badge/latest-share.svg": func(s *Summary) (string, string, string) {
		if s.LatestModsec == "" || s.Installations == 0 {
			return "on latest ModSecurity", "no data", badgeGrey
		}
		color := badgeOrange
		switch {
		case s.LatestShare >= 0.5:
			color = badgeGreen
		case s.LatestShare >= 0.25:
			color = badgeYellow
		}
		return "on latest ModSecurity", strconv.FormatFloat(100*s.LatestShare, 'f', 1, 64) + "%", color
	},
	"/badge/installations.svg": func(s *Summary) (string, string, string) {
		return "installations", groupThousands(s.Installations), badgeBlue
	},
}

func (s *Server) badge(w http.ResponseWriter, r *http.Request) {
	show := badges[r.URL.Path]
	from, to, err := s.rangeOf(r)
	if err != nil || show == nil {
		if err == nil {
			err = fmt.Errorf("no such badge")
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := s.storeOf(r)
	zone, err := s.zoneOf(r, st)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	pub := s.configOf(r).PublicMin
	v, err := s.viewZone(st, from, to, pub, pub, zone)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	sum := v.summary
	if sum.Zone != "" { // a custom schema's: the latest of its version field
		sum.LatestModsec = sum.LatestVersion
	}
	label, value, color := show(&sum)
	if sum.Zone != "" {
		label = strings.Replace(label, "ModSecurity", strings.TrimSuffix(sum.Zone, "."), 1)
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml; charset=utf-8")
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", badgeMaxAge))
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.Write(badgeSVG(label, value, color))
}

var badgeTemplate = template.Must(template.New("badge").Parse(
	`<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="20" role="img" aria-label="{{.Label}}: {{.Value}}">` +
		`<title>{{.Label}}: {{.Value}}</title>` +
		`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>` +
		`<clipPath id="r"><rect width="{{.W}}" height="20" rx="3" fill="#fff"/></clipPath>` +
		`<g clip-path="url(#r)"><rect width="{{.LW}}" height="20" fill="#555"/><rect x="{{.LW}}" width="{{.VW}}" height="20" fill="{{.Color}}"/>` +
		`<rect width="{{.W}}" height="20" fill="url(#s)"/></g>` +
		`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">` +
		`<text x="{{.LX}}" y="15" fill="#010101" fill-opacity=".3">{{.Label}}</text><text x="{{.LX}}" y="14">{{.Label}}</text>` +
		`<text x="{{.VX}}" y="15" fill="#010101" fill-opacity=".3">{{.Value}}</text><text x="{{.VX}}" y="14">{{.Value}}</text></g></svg>` + "\n"))

// badgeSVG draws one badge, its texts escaped for XML.
func badgeSVG(label, value, color string) []byte {
	lw, vw := textWidth(label)+10, textWidth(value)+10
	var b bytes.Buffer
	badgeTemplate.Execute(&b, struct {
		Label, Value, Color string
		W, LW, VW           int
		LX, VX              float64
	}{html.EscapeString(label), html.EscapeString(value), color, lw + vw, lw, vw, float64(lw) / 2, float64(lw) + float64(vw)/2})
	return b.Bytes()
}

// textWidth estimates the width in pixels of s in 11 px Verdana.
func textWidth(s string) int {
	w := 0.0
	for _, c := range s {
		switch {
		case c == ' ' || c == '.' || c == ',' || c == ':' || c == 'i' || c == 'l' || c == 'I':
			w += 3.9
		case c == 'm' || c == 'w' || c == 'M' || c == 'W' || c == '%':
			w += 11
		case c >= 'A' && c <= 'Z':
			w += 7.6
		default:
			w += 7
		}
	}
	return int(w + 0.5)
}

// groupThousands writes n with commas between groups of three digits.
func groupThousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
