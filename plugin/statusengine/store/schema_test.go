package store

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// docTables are the names doc.go's tables give a row: buckets (a row's
// first column) and meta keys (an indented row), of format 2 and of format
// 1.
type docTables struct {
	buckets, meta, legacyBuckets, legacyMeta []string
}

var rowName = regexp.MustCompile(`^(  )?([a-z][a-z0-9_.]*(, [a-z][a-z0-9_.]*)*)(  |$)`)

func readDocTables(t *testing.T) docTables {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var d docTables
	section := 0 // 1: the file's table, 2: format 1's, 3: past them
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case strings.HasPrefix(line, "// What the file holds"):
			section = 1
		case strings.HasPrefix(line, "// A format 1 file"):
			section = 2
		case strings.HasPrefix(line, "// Beside it"):
			section = 3
		}
		row, ok := strings.CutPrefix(line, "//\t")
		if !ok || section == 0 || section == 3 {
			continue
		}
		m := rowName.FindStringSubmatch(row)
		if m == nil {
			continue
		}
		names := strings.Split(m[2], ", ")
		switch {
		case section == 1 && m[1] == "":
			d.buckets = append(d.buckets, names...)
		case section == 1:
			d.meta = append(d.meta, names...)
		case m[1] == "":
			d.legacyBuckets = append(d.legacyBuckets, names...)
		default:
			d.legacyMeta = append(d.legacyMeta, names...)
		}
	}
	return d
}

func missing(names [][]byte, documented []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(documented, string(n)) {
			out = append(out, string(n))
		}
	}
	return out
}

func bytesOf(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// TestSchemaDocumented: every bucket and meta key schema.go names, of
// format 2 and format 1, has its row in doc.go's tables.
func TestSchemaDocumented(t *testing.T) {
	d := readDocTables(t)
	for _, c := range []struct {
		what       string
		names      [][]byte
		documented []string
	}{
		{"bucket", append(schema.Buckets[:len(schema.Buckets):len(schema.Buckets)], schema.OptionalBuckets...), d.buckets},
		{"meta key", schema.MetaKeys, d.meta},
		{"format 1 bucket", append([][]byte{schema.LegacyReports}, schema.LegacyDerived...), d.legacyBuckets},
		{"format 1 meta key", schema.LegacyMeta, d.legacyMeta},
	} {
		if m := missing(c.names, c.documented); len(m) > 0 {
			t.Errorf("%s %q missing from doc.go's table (it lists %q)", c.what, m, c.documented)
		}
	}
	if !slices.Contains(d.buckets, string(schema.Meta)) || !slices.Contains(d.legacyBuckets, string(schema.Meta)) {
		t.Errorf("doc.go's tables lack bucket meta")
	}
}

// TestSchemaInOneFile: the store and its packages declare bucket names and
// meta keys (a package-level []byte of a literal) in schema/schema.go only,
// and every name schema.go spells is in schema's lists, so in doc.go's
// tables (TestSchemaDocumented).
func TestSchemaInOneFile(t *testing.T) {
	const home = "schema/schema.go"
	fset := token.NewFileSet()
	var spelled []string
	err := filepath.WalkDir(".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				if name != home {
					for i, v := range vs.Values {
						if c, ok := v.(*ast.CallExpr); ok && len(c.Args) == 1 && types.ExprString(c.Fun) == "[]byte" {
							if _, lit := c.Args[0].(*ast.BasicLit); lit {
								t.Errorf("%s declares %s: bucket names and meta keys belong in %s", name, vs.Names[i].Name, home)
							}
						}
					}
					continue
				}
				ast.Inspect(vs, func(n ast.Node) bool {
					if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						spelled = append(spelled, s)
					}
					return true
				})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, l := range [][][]byte{schema.Buckets, schema.OptionalBuckets, schema.MetaKeys, {schema.LegacyReports}, schema.LegacyDerived, schema.LegacyMeta} {
		for _, n := range l {
			listed = append(listed, string(n))
		}
	}
	if len(spelled) == 0 {
		t.Fatal("no name found in schema.go")
	}
	for _, s := range spelled {
		if !slices.Contains(listed, s) && !strings.HasPrefix(s, "indexed.") {
			t.Errorf("schema.go spells %q, in none of its lists (buckets, metaKeys, legacy*)", s)
		}
	}
}

// viewFile runs fn in a read transaction of the bolt file at path.
func viewFile(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}

// fileSchema lists the top-level buckets of the file at path, and the keys
// of its bucket meta.
func fileSchema(t *testing.T, path string) (bucketNames, meta []string) {
	t.Helper()
	viewFile(t, path, func(tx *bolt.Tx) error {
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			bucketNames = append(bucketNames, string(name))
			return nil
		}); err != nil {
			return err
		}
		if m := tx.Bucket(schema.Meta); m != nil {
			return m.ForEach(func(k, _ []byte) error {
				meta = append(meta, string(k))
				return nil
			})
		}
		return nil
	})
	return bucketNames, meta
}

// TestStoreFileDocumented opens a fresh store, then one after reports, an
// import, a peer's cursors and a snapshot, and lists the file's buckets and
// meta keys with bbolt: each is in schema.go's lists and doc.go's table,
// and a fresh file has every bucket.
func TestStoreFileDocumented(t *testing.T) {
	d := readDocTables(t)
	path := filepath.Join(t.TempDir(), "se.db")
	check := func(stage string, wantMeta ...[]byte) {
		t.Helper()
		names, meta := fileSchema(t, path)
		for _, c := range []struct {
			what       string
			found      []string
			schema     [][]byte
			documented []string
		}{{"bucket", names, schema.Buckets, d.buckets}, {"meta key", meta, schema.MetaKeys, d.meta}} {
			for _, n := range c.found {
				if !slices.ContainsFunc(c.schema, func(b []byte) bool { return string(b) == n }) {
					t.Errorf("%s: %s %q is not in schema.go's lists", stage, c.what, n)
				}
			}
			if m := missing(bytesOf(c.found), c.documented); len(m) > 0 {
				t.Errorf("%s: %s %q missing from doc.go's table", stage, c.what, m)
			}
		}
		for _, b := range schema.Buckets {
			if !slices.Contains(names, string(b)) {
				t.Errorf("%s: the file lacks bucket %q", stage, b)
			}
		}
		for _, k := range wantMeta {
			if !slices.Contains(meta, string(k)) {
				t.Errorf("%s: the file lacks meta key %q (it has %q)", stage, k, meta)
			}
		}
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	check("fresh", schema.FormatKey)

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mustSubmit(t, s, newRecord(t, realBeacon, 1795549302, now), Stored)
	if _, err := s.SubmitBatch([]*record.Record{newRecord(t, "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,"+strings.Repeat("ab", 20), 1795549303, now.Add(-48*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPeer("https://peer.example/", PeerState{Cursor: 7, Synced: now, Imports: 3}); err != nil {
		t.Fatal(err)
	}
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -3)
	if _, err := s.SaveSnapshot(day, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	check("after reports, an import, a peer and a snapshot", schema.FormatKey, schema.CountKey, schema.RolledKey)

	// What those wrote, read back: the names still mean what they did.
	viewFile(t, path, func(tx *bolt.Tx) error {
		for _, c := range []struct {
			bucket []byte
			min    int
		}{{schema.Records, 2}, {schema.Seen, 2}, {schema.Zones, 1}, {schema.Builds, 1}, {schema.Installations, 2},
			{schema.Rollups, 1}, {schema.Snapshots, 1}, {schema.Peers, 2}, {schema.Imports, 1}} {
			if n := tx.Bucket(c.bucket).Stats().KeyN; n < c.min {
				t.Errorf("bucket %s holds %d keys, want at least %d", c.bucket, n, c.min)
			}
		}
		if v := tx.Bucket(schema.Peers).Get(schema.ImportsCursorKey("https://peer.example/")); !bytes.Equal(v, []byte{0, 0, 0, 0, 0, 0, 0, 3}) {
			t.Errorf("peer's imports cursor = %x, want 3", v)
		}
		if getUint(tx.Bucket(schema.Meta), schema.CountKey) != 2 {
			t.Errorf("meta count = %d, want 2", getUint(tx.Bucket(schema.Meta), schema.CountKey))
		}
		return nil
	})
}
