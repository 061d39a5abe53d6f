package advisory

import (
	"cmp"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Set is a set of advisories, by id. It is never changed once built, so
// requests share it.
type Set struct {
	Advisories []*Advisory // sorted by id
}

//go:embed data/*.json
var defaultFiles embed.FS

// Default is the embedded set (data/): advisories of ModSecurity 2.x and
// Apache httpd 2.2 and 2.4, each citing its source. Its files are checked by the
// tests, so it always loads.
func Default() *Set {
	s, err := loadFS(defaultFiles, "data", "default")
	if err != nil {
		panic("advisory: the embedded set does not load: " + err.Error())
	}
	return s
}

// Load reads path (an OSV file, or a directory of *.json OSV files, not
// recursive, in name order) and returns it alone, or with base's records
// (extend) — a record of path replaces base's record of the same id.
func Load(path string, base *Set, extend bool) (*Set, error) {
	var recs []*Advisory
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		s, err := loadFS(os.DirFS(path), ".", path)
		if err != nil {
			return nil, err
		}
		recs = s.Advisories
	} else {
		if !fi.Mode().IsRegular() {
			// Checked before the open: opening a FIFO waits for a writer.
			return nil, fmt.Errorf("%s: not a regular file or directory", path)
		}
		data, err := readFile(path, MaxFileBytes)
		if err != nil {
			return nil, err
		}
		if recs, err = Parse(path, data); err != nil {
			return nil, err
		}
	}
	if extend && base != nil {
		recs = append(slices.Clone(base.Advisories), recs...)
	}
	return newSet(recs)
}

// readFile reads at most limit bytes of a regular file; more is an error.
func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &RecordError{File: path, Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	return data, nil
}

// loadFS reads the *.json files of dir in fsys; name prefixes their names
// in errors.
func loadFS(fsys fs.FS, dir, name string) (*Set, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var recs []*Advisory
	files, total := 0, 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || !e.Type().IsRegular() {
			continue // also symbolic links: the directory's own files only
		}
		if files++; files > MaxFiles {
			return nil, fmt.Errorf("%s: more than %d files", name, MaxFiles)
		}
		f, err := fsys.Open(filepath.ToSlash(filepath.Join(dir, e.Name())))
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
		f.Close()
		path := filepath.Join(name, e.Name())
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if total += len(data); total > MaxTotalBytes {
			return nil, fmt.Errorf("%s: more than %d bytes in all", name, MaxTotalBytes)
		}
		rs, err := Parse(path, data)
		if err != nil {
			return nil, err
		}
		if len(recs)+len(rs) > MaxRecords {
			return nil, fmt.Errorf("%s: more than %d records", name, MaxRecords)
		}
		recs = append(recs, rs...)
	}
	return newSet(recs)
}

// newSet keeps the last record of each id, sorted by id.
func newSet(recs []*Advisory) (*Set, error) {
	byID := map[string]*Advisory{}
	n := 0
	for _, a := range recs {
		byID[a.ID] = a
	}
	s := &Set{}
	for _, a := range byID {
		s.Advisories = append(s.Advisories, a)
		n += len(a.intervals)
	}
	if len(s.Advisories) > MaxRecords {
		return nil, fmt.Errorf("more than %d records", MaxRecords)
	}
	if n > MaxIntervals {
		return nil, fmt.Errorf("more than %d affected ranges in all", MaxIntervals)
	}
	slices.SortFunc(s.Advisories, func(a, b *Advisory) int { return cmp.Compare(a.ID, b.ID) })
	return s, nil
}

// Fields lists the fields the set's advisories affect.
func (s *Set) Fields() []Field {
	var out []Field
	for _, f := range []Field{FieldModsec, FieldServer, FieldPCRE, FieldLibxml, FieldLua, FieldAPR} {
		for _, a := range s.Advisories {
			if slices.Contains(a.Fields, f) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// Index tells, for the values of field f (as summaries hold them), which
// each advisory lists as affected: Order sorts the indices of the values
// that hold a version by (package, version), and Spans[a] are the runs of
// Order that advisory a (an index of s.Advisories) affects, sorted and
// disjoint. A value without a version is in no run. It costs a sort of the
// values and a binary search per range end, however many values each range
// holds.
type Index struct {
	Order []int
	Spans map[int][][2]int
}

// Index builds the Index of values of field f.
func (s *Set) Index(f Field, values []string) *Index {
	ix := &Index{Spans: map[int][][2]int{}}
	// The mappings of f the set uses, in table order: their values form
	// consecutive blocks of Order.
	for mi := range Packages {
		m := &Packages[mi]
		if m.Field != f {
			continue
		}
		type vv struct {
			i int
			v Version
		}
		var block []vv
		if !s.uses(m) {
			continue
		}
		for i, val := range values {
			if v, ok := m.Extract(val); ok {
				block = append(block, vv{i, v})
			}
		}
		slices.SortFunc(block, func(a, b vv) int { return a.v.Compare(b.v) })
		base := len(ix.Order)
		for _, b := range block {
			ix.Order = append(ix.Order, b.i)
		}
		for ai, a := range s.Advisories {
			for _, iv := range a.intervals {
				if iv.m != m {
					continue
				}
				lo := 0
				if iv.hasLo {
					lo, _ = slices.BinarySearchFunc(block, iv.lo, func(x vv, t Version) int { return x.v.Compare(t) })
				}
				hi := len(block)
				if iv.hasHi {
					hi, _ = slices.BinarySearchFunc(block, iv.hi, func(x vv, t Version) int {
						if c := x.v.Compare(t); c != 0 || !iv.hiIncl {
							return c
						}
						return -1 // equal to an inclusive end: inside
					})
				}
				if lo < hi {
					ix.Spans[ai] = append(ix.Spans[ai], [2]int{base + lo, base + hi})
				}
			}
		}
	}
	for ai, sp := range ix.Spans {
		ix.Spans[ai] = mergeSpans(sp)
	}
	return ix
}

// mergeSpans sorts spans and joins those that overlap or touch.
func mergeSpans(sp [][2]int) [][2]int {
	slices.SortFunc(sp, func(a, b [2]int) int { return cmp.Compare(a[0], b[0]) })
	out := sp[:0]
	for _, x := range sp {
		if n := len(out); n > 0 && x[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], x[1])
			continue
		}
		out = append(out, x)
	}
	return out
}

// Unknown tells whether value, a value of field f, is unknown to the set:
// no package of f the set's advisories name reads a version in it, and one
// of them names it ("2.9.7-dev", "Apache" without a version). Such a value
// is never exposed, and is counted apart. Values of another product
// ("nginx") or of no package ("(null)" for Lua) are not unknown.
func (s *Set) Unknown(f Field, value string) bool {
	named := false
	for mi := range Packages {
		m := &Packages[mi]
		if m.Field != f || !s.uses(m) {
			continue
		}
		if _, ok := m.Extract(value); ok {
			return false
		}
		named = named || m.Holds(value)
	}
	return named
}

// uses tells whether an advisory of s has a range of m's package.
func (s *Set) uses(m *Mapping) bool {
	for _, a := range s.Advisories {
		for i := range a.intervals {
			if a.intervals[i].m == m {
				return true
			}
		}
	}
	return false
}
