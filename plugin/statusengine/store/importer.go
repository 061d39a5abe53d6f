package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// ImportStats counts what an import did with its input.
type ImportStats struct {
	Imported  int // stored now
	Duplicate int // already in the store (or earlier in the same input)
	Rejected  int // not a valid record
}

// importBatch is how many records an Importer hands the writer at once.
const importBatch = 4096

// Importer feeds records to a store in batches, through the same
// validation and de-duplication as live reports, and counts the outcomes.
// It is not safe for concurrent use.
type Importer struct {
	st     *Store
	batch  []*record.Record
	where  []int // the caller's position of each queued record (a line)
	reject func(at int, err error)
	Stats  ImportStats
}

// NewImporter returns an Importer writing to st; reject, when not nil, is
// told about each record the store rejects, by the position Add was given.
func NewImporter(st *Store, reject func(at int, err error)) *Importer {
	return &Importer{st: st, batch: make([]*record.Record, 0, importBatch), reject: reject}
}

// Add queues rec, found at position at (a line number), storing the queue
// when it is full.
func (im *Importer) Add(rec *record.Record, at int) error {
	im.batch = append(im.batch, rec)
	im.where = append(im.where, at)
	if len(im.batch) >= importBatch {
		return im.Flush()
	}
	return nil
}

// Reject counts one input that was not a valid record.
func (im *Importer) Reject(at int, err error) {
	im.Stats.Rejected++
	if im.reject != nil {
		im.reject(at, err)
	}
}

// Flush stores the queued records and waits until they are durable.
func (im *Importer) Flush() error {
	if len(im.batch) == 0 {
		return nil
	}
	results, err := im.st.SubmitBatch(im.batch)
	for i, r := range results {
		switch r.Outcome {
		case Stored:
			im.Stats.Imported++
		case Duplicate:
			im.Stats.Duplicate++
		case Rejected:
			im.Reject(im.where[i], r.Err)
		}
	}
	clear(im.batch)
	im.batch, im.where = im.batch[:0], im.where[:0]
	return err
}

// ZoneSet is the set of zones as records name them (lower case, with the
// final dot); nil for none.
func ZoneSet(zones []string) map[string]bool {
	if len(zones) == 0 {
		return nil
	}
	set := make(map[string]bool, len(zones))
	for _, z := range zones {
		z = strings.ToLower(z)
		if !strings.HasSuffix(z, ".") {
			z += "."
		}
		set[z] = true
	}
	return set
}

// MaxLine bounds one NDJSON line, its newline not counted: a record is well
// under 2 KiB, and the import reads no more than this at once. The one
// limit of every import (the API's, the command's, through the API or into
// a file).
const MaxLine = 1 << 20

// ErrLineTooLong is the error of an import line longer than MaxLine: the
// import stops there (what follows cannot be told apart from the line).
var ErrLineTooLong = fmt.Errorf("longer than the %d MiB limit on an import line", MaxLine>>20)

// ImportNDJSON stores the records of an NDJSON stream (Wire lines).
// Importing the same stream twice stores nothing the second time: records
// keep their receive time, and the store de-duplicates them as it does live
// reports. reject, when not nil, is told about each line that is not a
// valid record; blank lines are skipped.
func (s *Store) ImportNDJSON(r io.Reader, reject func(line int, err error)) (ImportStats, error) {
	return s.ImportNDJSONZones(r, nil, reject)
}

// ImportNDJSONZones is ImportNDJSON accepting only records of zones (when
// not empty): a record of another zone is rejected, as an invalid one is.
func (s *Store) ImportNDJSONZones(r io.Reader, zones []string, reject func(line int, err error)) (ImportStats, error) {
	im := NewImporter(s, reject)
	served := ZoneSet(zones)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), MaxLine+1) // the line and its newline
	line := 0
	schemas := s.Schemas()
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		rec, err := record.ParseLine(b, schemas)
		if err == nil && served != nil && !served[rec.Zone] {
			err = fmt.Errorf("zone %q is not one this server serves", rec.Zone)
		}
		if err != nil {
			im.Reject(line, err)
			continue
		}
		if err := im.Add(rec, line); err != nil {
			return im.Stats, err
		}
	}
	if err := sc.Err(); err != nil {
		ferr := im.Flush()
		if errors.Is(err, bufio.ErrTooLong) {
			err = ErrLineTooLong
		}
		if ferr != nil {
			return im.Stats, ferr
		}
		return im.Stats, fmt.Errorf("line %d: %w", line+1, err)
	}
	return im.Stats, im.Flush()
}

// Export writes the records received in [from, to] to w as NDJSON (Wire
// lines), oldest first, and returns how many it wrote.
func (s *Store) Export(w io.Writer, from, to time.Time) (int, error) {
	return s.write(record.NewNDJSONWriter(w).Write, from, to)
}

// ExportCSV writes the records of [from, to] to w as CSV (CSVWriter), and
// says how many.
func (s *Store) ExportCSV(w io.Writer, from, to time.Time) (int, error) {
	cw, err := record.NewCSVWriter(w)
	if err != nil {
		return 0, err
	}
	return s.write(cw.Write, from, to)
}

func (s *Store) write(write func(*record.Record) error, from, to time.Time) (int, error) {
	n := 0
	err := s.Each(from, to, 0, func(r *record.Record) error {
		if err := write(r); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
