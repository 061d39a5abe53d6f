package apitypes

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// ReportsPage is the answer of GET /api/v1/reports: records in their wire
// form, the same as a line of the export, in key order. NextCursor is the
// cursor to ask for the next page with; nil on the last page.
type ReportsPage struct {
	Reports    []record.Wire `json:"reports"`
	NextCursor *string       `json:"next_cursor"`
}

// ImportsPage is the answer of GET /api/v1/imports: records imported below
// the newest key, in the order they were imported. Cursor is where the next
// page starts (the sequence number of the last entry read, hex); More tells
// whether there is one.
type ImportsPage struct {
	Reports []record.Wire `json:"reports"`
	Cursor  string        `json:"cursor"`
	More    bool          `json:"more"`
}

// RowsName is the JSON name of the records of both pages (the tag of their
// Reports fields; TestPageNames holds it to them).
const RowsName = "reports"

// ReportsPageHead begins a ReportsPage written a row at a time: its records
// follow, separated by commas, then ReportsPageTail.
const ReportsPageHead = `{"` + RowsName + `":[`

// ReportsPageTail ends a ReportsPage begun with ReportsPageHead, with its
// next cursor (nil: the last page) and a newline.
func ReportsPageTail(next *string) string {
	b, err := json.Marshal(next) // null, or a quoted string
	if err != nil {
		panic(err) // a *string always marshals
	}
	return `],"next_cursor":` + string(b) + "}\n"
}

// DecodePage reads a page of records (into a *ReportsPage or *ImportsPage)
// from r a row at a time: each record goes to row as it is read, raw, never
// held with the others, and page's Reports stay empty; its other fields are
// decoded into page as they come. A field of a later version is skipped. An
// error of row stops the decoding with it; only r's JSON, not the records',
// is checked here.
func DecodePage(r io.Reader, page any, row func(json.RawMessage) error) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string) // an object's keys are strings
		if name == RowsName {
			if err := decodeRows(dec, row); err != nil {
				return err
			}
			continue
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		// The field alone, as an object of its own: decoded by page's tags.
		key, _ := json.Marshal(name)
		field := make([]byte, 0, len(key)+len(raw)+3)
		field = append(append(append(append(append(field, '{'), key...), ':'), raw...), '}')
		if err := json.Unmarshal(field, page); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return expectDelim(dec, '}')
}

// decodeRows reads the array of a page's records, handing each to row.
func decodeRows(dec *json.Decoder, row func(json.RawMessage) error) error {
	if err := expectDelim(dec, '['); err != nil {
		return err
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := row(raw); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

// expectDelim reads the delimiter d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("not a page of reports: %v where %q was due", tok, string(d))
	}
	return nil
}
