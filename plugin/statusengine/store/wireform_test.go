package store

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// TestCSVColumnsCoverWire: every field of the wire form has a CSV column, so
// a field added to Wire cannot be left out of the CSV export. Report and Geo
// are flattened; Geo's source is geo_source.
func TestCSVColumnsCoverWire(t *testing.T) {
	names := func(v any, prefix string, skip ...string) []string {
		var out []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if !slices.Contains(skip, name) {
				out = append(out, prefix+name)
			}
		}
		return out
	}
	want := names(record.Wire{}, "", "geo", "report")
	want = append(want, names(record.WireReport{}, "")...)
	for _, n := range names(record.WireGeo{}, "") {
		if n == "source" {
			n = "geo_source"
		}
		want = append(want, n)
	}
	header := record.CSVHeader()
	for _, n := range want {
		if !slices.Contains(header, n) {
			t.Errorf("wire field %q has no CSV column", n)
		}
	}
	if len(header) != len(want) {
		t.Errorf("CSV has %d columns, the wire form %d fields: %v vs %v", len(header), len(want), header, want)
	}
}
