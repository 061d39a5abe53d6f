package apitypes

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// TestPageNames: RowsName is the tag of both pages' records, and a reports
// page written a row at a time (ReportsPageHead, rows, ReportsPageTail)
// decodes, by the type's tags, to what was written.
func TestPageNames(t *testing.T) {
	for _, page := range []any{ReportsPage{}, ImportsPage{}} {
		f, _ := reflect.TypeOf(page).FieldByName("Reports")
		if tag := f.Tag.Get("json"); tag != RowsName {
			t.Errorf("%T: Reports tagged %q, RowsName %q", page, tag, RowsName)
		}
	}
	cursor := "0000018c2e3a4b5c"
	for _, next := range []*string{nil, &cursor} {
		body := ReportsPageHead + `{"key":"1"}` + "," + `{"key":"2"}` + ReportsPageTail(next)
		var got ReportsPage
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		want := ReportsPage{Reports: []record.Wire{{Key: "1"}, {Key: "2"}}, NextCursor: next}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q decodes to %+v, want %+v", body, got, want)
		}
		if !strings.HasSuffix(body, "}\n") {
			t.Errorf("%q does not end with a newline", body)
		}
	}
}

// TestDecodePage: each record goes to row as it is read, the other fields
// into the page by its tags; a field of a later version is skipped; what is
// not a page fails.
func TestDecodePage(t *testing.T) {
	cursor := "abc"
	tests := []struct {
		name    string
		body    string
		page    any
		want    any
		rows    []string
		wantErr string
	}{
		{"reports, last page", `{"reports":[{"key":"1"},{"key":"2"}],"next_cursor":null}`,
			&ReportsPage{}, &ReportsPage{}, []string{`{"key":"1"}`, `{"key":"2"}`}, ""},
		{"reports, cursor first, a later field", `{"next_cursor":"abc","later":{"x":[1]},"reports":[{"key":"1"}]}`,
			&ReportsPage{}, &ReportsPage{NextCursor: &cursor}, []string{`{"key":"1"}`}, ""},
		{"imports", `{"reports":[],"cursor":"1f","more":true}`,
			&ImportsPage{}, &ImportsPage{Cursor: "1f", More: true}, nil, ""},
		{"a row that fails", `{"reports":[{"key":"1"},{"key":"stop"}],"next_cursor":null}`,
			&ReportsPage{}, &ReportsPage{}, []string{`{"key":"1"}`}, "stop"},
		{"a bad cursor", `{"reports":[],"next_cursor":5}`, &ReportsPage{}, &ReportsPage{}, nil, "next_cursor: "},
		{"not an object", `[1]`, &ReportsPage{}, &ReportsPage{}, nil, "not a page of reports"},
		{"rows not an array", `{"reports":{}}`, &ReportsPage{}, &ReportsPage{}, nil, "not a page of reports"},
		{"cut", `{"reports":[{"key":"1"}`, &ReportsPage{}, &ReportsPage{}, []string{`{"key":"1"}`}, "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rows []string
			err := DecodePage(strings.NewReader(tc.body), tc.page, func(raw json.RawMessage) error {
				if strings.Contains(string(raw), "stop") {
					return errors.New("stop")
				}
				rows = append(rows, string(raw))
				return nil
			})
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if strings.Join(rows, " ") != strings.Join(tc.rows, " ") {
				t.Errorf("rows %q, want %q", rows, tc.rows)
			}
			if err == nil && !reflect.DeepEqual(tc.page, tc.want) {
				t.Errorf("page %+v, want %+v", tc.page, tc.want)
			}
		})
	}
}
