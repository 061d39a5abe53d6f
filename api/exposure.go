package api

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/advisory"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// Bounds of /api/v1/exposure's lists: whatever the advisory set holds, an
// answer names at most MaxExposureAdvisories advisories, MaxExposureVersions
// versions of each, and MaxTrendAdvisories series per step.
const (
	MaxExposureAdvisories = 25
	MaxExposureVersions   = 10
	MaxTrendAdvisories    = 5
)

// ExposureCaveat is what every exposure answer, the page and the README
// say of what the figures mean.
const ExposureCaveat = "An installation is counted when it runs a version that upstream lists as affected. " +
	"Distributions backport fixes without changing the version a program reports (Debian's Apache/2.4.62 (Debian) " +
	"may carry fixes a plain 2.4.62 lacks), so this is an upper bound of what is really vulnerable; " +
	"a version that does not parse as a numeric dotted version is unknown, never exposed."

// exposureDims maps the advisory fields to the store's dimensions: the
// built-in ModSecurity schema's version fields.
var exposureDims = map[advisory.Field]rollup.Dimension{
	advisory.FieldModsec: rollup.DimModsec,
	advisory.FieldServer: rollup.DimServer,
	advisory.FieldPCRE:   rollup.DimPCRE,
	advisory.FieldLibxml: rollup.DimLibxml,
	advisory.FieldLua:    rollup.DimLua,
	advisory.FieldAPR:    rollup.DimAPR,
}

// comboValue is a combination's value of field f.
func comboValue(c *rollup.Combo, f advisory.Field) string {
	switch f {
	case advisory.FieldModsec:
		return c.Modsec
	case advisory.FieldServer:
		return c.Server
	case advisory.FieldPCRE:
		return c.PCRE
	case advisory.FieldLibxml:
		return c.Libxml
	case advisory.FieldLua:
		return c.Lua
	case advisory.FieldAPR:
		return c.APR
	}
	return ""
}

// Exposure is the answer of /api/v1/exposure.
type Exposure struct {
	From int64  `json:"from"`
	To   int64  `json:"to"`
	Zone string `json:"zone,omitempty"`
	Step string `json:"step"`
	// Installations are all installations of the range; Exposed those that
	// run a version upstream lists as affected by at least one advisory,
	// each counted once however many advisories list it.
	Installations uint64     `json:"installations"`
	Exposed       ShareCount `json:"exposed"`
	// Unknown are the installations not exposed whose version of a field
	// the advisories cover does not parse ("2.9.7-dev", "Apache" without
	// a version): never counted as exposed, counted here.
	Unknown    ShareCount  `json:"unknown"`
	BySeverity []SevGroup  `json:"by_severity"`
	Advisories []AdvExpo   `json:"advisories"`
	Other      ExpoOther   `json:"other"`
	Trend      []ExpoStep  `json:"trend"`
	Set        ExpoSetInfo `json:"advisory_set"`
	Caveat     string      `json:"caveat"`
	PublicMin  Floor       `json:"public_min"`
}

// ShareCount is a number of installations and its share of the range's.
type ShareCount struct {
	Installations uint64  `json:"installations"`
	Share         float64 `json:"share"`
}

// SevGroup is the installations exposed to at least one advisory of a
// severity; "other" sums the levels under the public floor (an
// installation may be in several levels).
type SevGroup struct {
	Severity string `json:"severity"`
	ShareCount
	Advisories int  `json:"advisories"`
	Other      bool `json:"other,omitempty"`
}

// AdvExpo is one advisory and the installations on a version it lists.
type AdvExpo struct {
	*advisory.Advisory
	ShareCount
	// Versions are the affected values seen that pass the public floor
	// themselves, most installations first; OtherVersions counts the rest
	// (under the floor, or past MaxExposureVersions): counted, never named.
	Versions      []ExpoVersion `json:"versions"`
	OtherVersions int           `json:"other_versions"`
}

// ExpoVersion is one affected value of a field.
type ExpoVersion struct {
	Field advisory.Field `json:"field"`
	Value string         `json:"value"`
	ShareCount
}

// ExpoOther counts the advisories an answer does not list: those whose
// installations are under the public floor or past MaxExposureAdvisories
// (their installations are in Exposed), and those no installation of the
// range runs.
type ExpoOther struct {
	Advisories int `json:"advisories"`
	Quiet      int `json:"quiet"`
}

// ExpoStep is one step of the trend, counted over the step's version
// combinations as the range's totals are: Exposed, the installations
// exposed to at least one advisory, each once; Fields, per field, those on
// a version some advisory lists; Advisories, the top advisories of the
// range that the floor lets through.
type ExpoStep struct {
	T             int64                     `json:"t"`
	Installations uint64                    `json:"installations"`
	Exposed       uint64                    `json:"exposed"`
	Fields        map[advisory.Field]uint64 `json:"fields"`
	Advisories    map[string]uint64         `json:"advisories"`
}

// ExpoSetInfo tells which advisories were counted against.
type ExpoSetInfo struct {
	Records int              `json:"records"`
	Default bool             `json:"default"`
	Fields  []advisory.Field `json:"fields"`
}

var (
	defaultSetOnce sync.Once
	defaultSet     *advisory.Set
)

// advisoriesOf is the set r's configuration counts against.
func (s *Server) advisoriesOf(r *http.Request) (*advisory.Set, bool) {
	if set := s.configOf(r).Advisories; set != nil {
		return set, false
	}
	defaultSetOnce.Do(func() { defaultSet = advisory.Default() })
	return defaultSet, true
}

func (s *Server) exposure(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := s.rangeOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stepName, err := oneOf(q, "step", "day", "day", "week", "month")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := s.storeOf(r)
	// Exposure counts ModSecurity's zones: the advisories map to its
	// fields (advisory.Packages); a zone of a custom schema has none.
	zone := q.Get("zone")
	switch custom, err := s.zoneOf(r, st); {
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case custom != "":
		writeError(w, http.StatusBadRequest, fmt.Sprintf("zone %q has a beacon schema of its own: exposure counts ModSecurity's zones, whose fields the advisories name", custom))
		return
	}
	if _, ok := st.FirstDay(); !ok {
		from = to // nothing stored: no empty years of steps (from=0)
	}
	step := steps[stepName]
	first := stepStart(from, step)
	if countSteps(first, to, step) > MaxInstallSteps {
		writeError(w, http.StatusBadRequest, "too many steps: use a longer step or a shorter range")
		return
	}
	set, isDefault := s.advisoriesOf(r)
	f := s.floorOf(r)
	d0, d1 := store.DaySpan(from, to)
	// The zone is echoed in the answer, so it is part of the key.
	key := fmt.Sprintf("exposure %d %d %d %s %v %p %q", d0.Unix(), d1.Unix(), to.Unix(), stepName, f, set, zone)
	body, err := s.cache.get(key, st, &s.configOf(r).Limits, func() ([]byte, error) {
		t, err := st.Totals(from, to)
		if err != nil {
			return nil, err
		}
		e := exposureOf(t, set, f)
		e.Step, e.Set.Default = stepName, isDefault
		if e.Trend, err = exposureTrend(st, set, first, endOf(to), step, e.Advisories); err != nil {
			return nil, err
		}
		e.Zone = zone
		return json.Marshal(e)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	writeJSONBytes(w, body)
}

// fieldMatch is what one field's values say: per value (an index of
// values), whether any advisory (and any of each severity) lists it, and
// each advisory's installations and networks over its affected values.
type fieldMatch struct {
	values []string
	counts []store.Counts
	pos    map[string]int
	any    []bool
	sev    [5][]bool // per advisory.Severities index
	// per advisory index: installations on its affected values (exact: an
	// installation has one value of the field), the most networks of one
	// of them (a lower bound of the group's), and the values
	inst  map[int]uint64
	nets  map[int]uint64
	spans map[int][][2]int
	order []int
}

// matchField indexes the values of one field against set.
func matchField(set *advisory.Set, f advisory.Field, m map[string]store.Counts) *fieldMatch {
	fm := &fieldMatch{pos: make(map[string]int, len(m)), inst: map[int]uint64{}, nets: map[int]uint64{}}
	for v, c := range m {
		fm.pos[v] = len(fm.values)
		fm.values = append(fm.values, v)
		fm.counts = append(fm.counts, c)
	}
	ix := set.Index(f, fm.values)
	fm.spans, fm.order = ix.Spans, ix.Order
	n := len(ix.Order)
	// Prefix sums of installations, and a sparse table of the most
	// networks, in Order: a span costs O(1) however many values it holds.
	sum := make([]uint64, n+1)
	for k, i := range ix.Order {
		sum[k+1] = sum[k] + fm.counts[i].Installations
	}
	table := [][]uint64{make([]uint64, n)}
	for k, i := range ix.Order {
		table[0][k] = fm.counts[i].Networks
	}
	for w := 1; 2*w <= n; w *= 2 {
		prev := table[len(table)-1]
		row := make([]uint64, n-2*w+1)
		for k := range row {
			row[k] = max(prev[k], prev[k+w])
		}
		table = append(table, row)
	}
	rangeMax := func(a, b int) uint64 { // [a, b), a < b
		lvl, w := 0, 1
		for 2*w <= b-a {
			lvl, w = lvl+1, 2*w
		}
		return max(table[lvl][a], table[lvl][b-w])
	}
	diffAny := make([]int, n+1)
	var diffSev [5][]int
	for ai, spans := range ix.Spans {
		sv := sevIndex(set.Advisories[ai].Severity)
		if diffSev[sv] == nil {
			diffSev[sv] = make([]int, n+1)
		}
		for _, sp := range spans {
			fm.inst[ai] += sum[sp[1]] - sum[sp[0]]
			fm.nets[ai] = max(fm.nets[ai], rangeMax(sp[0], sp[1]))
			diffAny[sp[0]]++
			diffAny[sp[1]]--
			diffSev[sv][sp[0]]++
			diffSev[sv][sp[1]]--
		}
	}
	mark := func(d []int) []bool {
		out := make([]bool, len(fm.values))
		run := 0
		for k := 0; k < n; k++ {
			run += d[k]
			out[ix.Order[k]] = run > 0
		}
		return out
	}
	fm.any = mark(diffAny)
	for sv, d := range diffSev {
		if d != nil {
			fm.sev[sv] = mark(d)
		}
	}
	return fm
}

// exposureOf computes the range's exposure from t: totals over the
// version combinations (an installation has one combination, so one
// exposed by several advisories counts once), per advisory over the
// fields' values, every group under floor f counted and never named.
func exposureOf(t *store.Totals, set *advisory.Set, f Floor) *Exposure {
	x := &exposureCount{t: t, set: set, f: f, matches: map[advisory.Field]*fieldMatch{}}
	e := &Exposure{From: t.From.Unix(), To: t.To.Unix(), Installations: t.Total.Installations, Caveat: ExposureCaveat, PublicMin: f,
		BySeverity: []SevGroup{}, Advisories: []AdvExpo{}, Trend: []ExpoStep{},
		Set: ExpoSetInfo{Records: len(set.Advisories), Fields: set.Fields()}}
	x.fields = e.Set.Fields
	for _, fl := range x.fields {
		x.matches[fl] = matchField(set, fl, t.Dims[exposureDims[fl]])
	}
	x.markMulti()
	x.countCombos()
	e.Exposed, e.Unknown = x.share(x.exposed), x.share(x.unknown)
	x.advisories(e)
	x.bySeverity(e)
	return e
}

// exposureCount is exposureOf's work: the range's totals, the set, the
// floor, and what the passes over them found.
type exposureCount struct {
	t       *store.Totals
	set     *advisory.Set
	f       Floor
	fields  []advisory.Field
	matches map[advisory.Field]*fieldMatch

	multi            map[int][]map[string]bool // advisory -> per field, its affected values
	multiInst        map[int]uint64            // advisory on several fields -> installations
	exposed, unknown uint64
	sevInst          [5]uint64 // installations exposed at each level of advisory.Severities
	sevAdv           map[string]int
	sevNets          map[string]uint64
}

// share is n and its share of the range's installations.
func (x *exposureCount) share(n uint64) ShareCount {
	sc := ShareCount{Installations: n}
	if total := x.t.Total.Installations; total > 0 {
		sc.Share = float64(n) / float64(total)
	}
	return sc
}

// markMulti marks the affected values of each advisory on more than one
// field (rare): they are counted over the combinations, at most
// maxMultiField of them; the others count the most of one field (a lower
// bound), so a hostile set costs no more than that many passes.
func (x *exposureCount) markMulti() {
	x.multi, x.multiInst = map[int][]map[string]bool{}, map[int]uint64{}
	for ai, a := range x.set.Advisories {
		if len(a.Fields) < 2 || len(x.multi) == maxMultiField {
			continue
		}
		marks := make([]map[string]bool, len(a.Fields))
		for k, fl := range a.Fields {
			fm := x.matches[fl]
			marks[k] = map[string]bool{}
			for _, sp := range fm.spans[ai] {
				for j := sp[0]; j < sp[1]; j++ {
					marks[k][fm.values[fm.order[j]]] = true
				}
			}
		}
		x.multi[ai] = marks
	}
}

// countCombos counts, over the version combinations, the installations
// exposed to at least one advisory, those of an unknown version that are
// not, those exposed at each severity, and those of each multi-field
// advisory.
func (x *exposureCount) countCombos() {
	unknownOf := map[advisory.Field]map[string]bool{}
	for _, fl := range x.fields {
		unknownOf[fl] = map[string]bool{}
		for v := range x.t.Dims[exposureDims[fl]] {
			if x.set.Unknown(fl, v) {
				unknownOf[fl][v] = true
			}
		}
	}
	for c, cnt := range x.t.Combos {
		hit := false
		var sevHit [5]bool
		for _, fl := range x.fields {
			fm := x.matches[fl]
			i, ok := fm.pos[comboValue(&c, fl)]
			if !ok || !fm.any[i] {
				continue
			}
			hit = true
			for k := range sevHit {
				sevHit[k] = sevHit[k] || (fm.sev[k] != nil && fm.sev[k][i])
			}
		}
		if !hit {
			for _, fl := range x.fields {
				if unknownOf[fl][comboValue(&c, fl)] {
					x.unknown += cnt.Installations
					break
				}
			}
			continue
		}
		x.exposed += cnt.Installations
		for k, h := range sevHit {
			if h {
				x.sevInst[k] += cnt.Installations
			}
		}
		for ai, marks := range x.multi {
			for k, fl := range x.set.Advisories[ai].Fields {
				if marks[k][comboValue(&c, fl)] {
					x.multiInst[ai] += cnt.Installations
					break
				}
			}
		}
	}
}

// advisoryRow is one advisory's figures before the floor.
type advisoryRow struct {
	ai   int
	c    store.Counts
	vers []ExpoVersion
	hid  int
}

// advisories lists each advisory with installations: its installations
// and networks (the most of one of its values: a lower bound), most first,
// under the floor, at most MaxExposureAdvisories; and counts each level's
// advisories for bySeverity.
func (x *exposureCount) advisories(e *Exposure) {
	var rows []advisoryRow
	x.sevAdv, x.sevNets = map[string]int{}, map[string]uint64{}
	for ai, a := range x.set.Advisories {
		r := advisoryRow{ai: ai}
		for _, fl := range a.Fields {
			fm := x.matches[fl]
			r.c.Installations = max(r.c.Installations, fm.inst[ai])
			r.c.Networks = max(r.c.Networks, fm.nets[ai])
		}
		if _, ok := x.multi[ai]; ok {
			r.c.Installations = x.multiInst[ai]
		}
		if r.c.Installations == 0 {
			e.Other.Quiet++
			continue
		}
		x.sevAdv[a.Severity]++
		x.sevNets[a.Severity] = max(x.sevNets[a.Severity], r.c.Networks)
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b advisoryRow) int {
		return cmp.Or(cmp.Compare(b.c.Installations, a.c.Installations), cmp.Compare(x.set.Advisories[a.ai].ID, x.set.Advisories[b.ai].ID))
	})
	for _, r := range rows {
		if !x.f.passes(r.c) || len(e.Advisories) == MaxExposureAdvisories {
			e.Other.Advisories++
			continue
		}
		x.versions(&r)
		e.Advisories = append(e.Advisories, AdvExpo{Advisory: x.set.Advisories[r.ai], ShareCount: x.share(r.c.Installations), Versions: r.vers, OtherVersions: r.hid})
	}
}

// versions names r's affected versions, each only when it passes the
// floor itself, most installations first, at most MaxExposureVersions;
// the rest are counted in r.hid.
func (x *exposureCount) versions(r *advisoryRow) {
	for _, fl := range x.set.Advisories[r.ai].Fields {
		fm := x.matches[fl]
		for _, sp := range fm.spans[r.ai] {
			for k := sp[0]; k < sp[1]; k++ {
				i := fm.order[k]
				if c := fm.counts[i]; x.f.passes(c) {
					r.vers = append(r.vers, ExpoVersion{Field: fl, Value: fm.values[i], ShareCount: x.share(c.Installations)})
				} else {
					r.hid++
				}
			}
		}
	}
	slices.SortFunc(r.vers, func(a, b ExpoVersion) int {
		return cmp.Or(cmp.Compare(b.Installations, a.Installations), cmp.Compare(a.Value, b.Value))
	})
	if len(r.vers) > MaxExposureVersions {
		r.hid += len(r.vers) - MaxExposureVersions
		r.vers = r.vers[:MaxExposureVersions]
	}
	if r.vers == nil {
		r.vers = []ExpoVersion{}
	}
}

// bySeverity groups the exposed installations by level; a level under the
// floor joins the "other" group.
func (x *exposureCount) bySeverity(e *Exposure) {
	var other SevGroup
	for k, sv := range advisory.Severities {
		n := x.sevInst[k]
		if n == 0 {
			continue
		}
		if !x.f.passes(store.Counts{Installations: n, Networks: x.sevNets[sv]}) {
			other.Installations += n
			other.Advisories += x.sevAdv[sv]
			continue
		}
		e.BySeverity = append(e.BySeverity, SevGroup{Severity: sv, ShareCount: x.share(n), Advisories: x.sevAdv[sv]})
	}
	if other.Installations > 0 {
		other.Severity, other.Other = OtherName, true
		other.Share = x.share(other.Installations).Share
		e.BySeverity = append(e.BySeverity, other)
	}
}

// maxMultiField bounds the advisories on several fields counted exactly
// over the combinations.
const maxMultiField = 64

// sevIndex is the index of a level in advisory.Severities.
func sevIndex(sv string) int {
	for k, x := range advisory.Severities {
		if x == sv {
			return k
		}
	}
	return len(advisory.Severities) - 1 // unknown
}

// exposureTrend counts each step of [first, to] as exposureOf counts the
// range, over the step's version combinations (one pass of the store per
// step, rollup.DimCombo; closed steps are kept by the store), so that an
// installation exposed by several advisories counts once in every step.
func exposureTrend(st *store.Store, set *advisory.Set, first, to time.Time, step store.Step, shown []AdvExpo) ([]ExpoStep, error) {
	top := shown
	if len(top) > MaxTrendAdvisories {
		top = top[:MaxTrendAdvisories]
	}
	steps, err := st.Installs(first, to, step, rollup.DimCombo)
	if err != nil {
		return nil, err
	}
	fields := set.Fields()
	ids := map[string]int{}
	for i, a := range set.Advisories {
		ids[a.ID] = i
	}
	out := make([]ExpoStep, 0, len(steps))
	for _, b := range steps {
		x := &exposureCount{t: stepTotals(b, fields), set: set, f: NoFloor, fields: fields, matches: map[advisory.Field]*fieldMatch{}}
		for _, fl := range fields {
			x.matches[fl] = matchField(set, fl, x.t.Dims[exposureDims[fl]])
		}
		x.markMulti()
		x.countCombos()
		o := ExpoStep{T: b.Start.Unix(), Installations: b.Total.Installations, Exposed: x.exposed,
			Fields: map[advisory.Field]uint64{}, Advisories: map[string]uint64{}}
		for _, fl := range fields {
			fm := x.matches[fl]
			for k, hit := range fm.any {
				if hit {
					o.Fields[fl] += fm.counts[k].Installations
				}
			}
		}
		for _, a := range top {
			ai := ids[a.ID]
			if n, ok := x.multiInst[ai]; ok {
				o.Advisories[a.ID] = n
				continue
			}
			for _, fl := range a.Fields {
				o.Advisories[a.ID] = max(o.Advisories[a.ID], x.matches[fl].inst[ai])
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// stepTotals makes of a step's combinations the part of a store.Totals
// exposureCount reads: the combinations, and each field's values summed
// over them (installations and reports; an installation has one
// combination, so the sums are exact, but networks are not summed).
func stepTotals(b store.InstallStep, fields []advisory.Field) *store.Totals {
	t := &store.Totals{Total: b.Total, Combos: map[rollup.Combo]store.Counts{}, Dims: map[rollup.Dimension]map[string]store.Counts{}}
	for _, fl := range fields {
		t.Dims[exposureDims[fl]] = map[string]store.Counts{}
	}
	for k, c := range b.Values {
		combo, ok := rollup.ParseComboKey(k)
		if !ok {
			continue
		}
		t.Combos[combo] = c
		for _, fl := range fields {
			m := t.Dims[exposureDims[fl]]
			v := comboValue(&combo, fl)
			sum := m[v]
			sum.Installations += c.Installations
			sum.Reports += c.Reports
			m[v] = sum
		}
	}
	return t
}

// exposedBadge is /badge/exposed.svg: the share of installations of the
// range on a version upstream lists as affected by a known advisory, under
// the public floor whoever asks (a badge is cached by anyone).
func (s *Server) exposedBadge(w http.ResponseWriter, r *http.Request) {
	from, to, err := s.rangeOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := s.storeOf(r)
	set, _ := s.advisoriesOf(r)
	pub := s.configOf(r).PublicMin
	d0, d1 := store.DaySpan(from, to)
	body, err := s.cache.get(fmt.Sprintf("exposed.svg %d %d %v %p", d0.Unix(), d1.Unix(), pub, set), st, &s.configOf(r).Limits, func() ([]byte, error) {
		t, err := st.Totals(from, to)
		if err != nil {
			return nil, err
		}
		e := exposureOf(t, set, pub)
		label, value, color := "on a version with a known advisory", "no data", badgeGrey
		if e.Installations > 0 {
			value = strconvShare(e.Exposed.Share)
			switch {
			case e.Exposed.Share <= 0.1:
				color = badgeGreen
			case e.Exposed.Share <= 0.5:
				color = badgeYellow
			default:
				color = badgeOrange
			}
		}
		return badgeSVG(label, value, color), nil
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml; charset=utf-8")
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", badgeMaxAge))
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.Write(body)
}

func strconvShare(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }
