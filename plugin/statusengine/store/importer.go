package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
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
// de-duplication as live reports, and counts the outcomes. It is not safe
// for concurrent use.
type Importer struct {
	st    *Store
	batch []*Record
	Stats ImportStats
}

// NewImporter returns an Importer writing to st.
func NewImporter(st *Store) *Importer {
	return &Importer{st: st, batch: make([]*Record, 0, importBatch)}
}

// Add queues rec, storing the queue when it is full.
func (im *Importer) Add(rec *Record) error {
	im.batch = append(im.batch, rec)
	if len(im.batch) >= importBatch {
		return im.Flush()
	}
	return nil
}

// Reject counts one input that was not a valid record.
func (im *Importer) Reject() { im.Stats.Rejected++ }

// Flush stores the queued records and waits until they are durable.
func (im *Importer) Flush() error {
	if len(im.batch) == 0 {
		return nil
	}
	outcomes, err := im.st.SubmitBatch(im.batch)
	for _, o := range outcomes {
		switch o {
		case Stored:
			im.Stats.Imported++
		case Duplicate:
			im.Stats.Duplicate++
		}
	}
	clear(im.batch)
	im.batch = im.batch[:0]
	return err
}

// maxLine bounds one NDJSON line; a record is well under 2 KiB.
const maxLine = 1 << 20

// importLine reads Export's lines and also those of the API's NDJSON export
// (GET /api/v1/export), whose "key" is the receive time in hex nanoseconds,
// "received" unix seconds and "client_epoch" the epoch label.
type importLine struct {
	Exported
	Received    json.RawMessage `json:"received"`
	Key         string          `json:"key"`
	ClientEpoch *int64          `json:"client_epoch"`
}

func parseLine(b []byte) (*Record, error) {
	var l importLine
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	e := &l.Exported
	switch {
	case l.Key != "":
		k, err := strconv.ParseUint(l.Key, 16, 63)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		e.Received = time.Unix(0, int64(k))
	case len(l.Received) > 0 && l.Received[0] == '"':
		if err := json.Unmarshal(l.Received, &e.Received); err != nil {
			return nil, fmt.Errorf("received: %w", err)
		}
	case len(l.Received) > 0:
		sec, err := strconv.ParseInt(string(l.Received), 10, 64)
		if err != nil || sec <= 0 || sec >= 1<<33 {
			return nil, errors.New("received: not a time")
		}
		e.Received = time.Unix(sec, 0)
	}
	if e.Epoch == nil {
		e.Epoch = l.ClientEpoch
	}
	return e.Record()
}

// ImportNDJSON stores the records of an NDJSON stream as Export writes it
// (or as the API's export endpoint does).
// Importing the same stream twice stores nothing the second time: records
// keep their receive time, and the store de-duplicates them as it does
// live reports. reject, when not nil, is told about each line that is not a
// valid record (by line number); blank lines are skipped.
func (s *Store) ImportNDJSON(r io.Reader, reject func(line int, err error)) (ImportStats, error) {
	im := NewImporter(s)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		rec, err := parseLine(b)
		if err != nil {
			im.Reject()
			if reject != nil {
				reject(line, err)
			}
			continue
		}
		if err := im.Add(rec); err != nil {
			return im.Stats, err
		}
	}
	if err := sc.Err(); err != nil {
		im.Flush()
		return im.Stats, fmt.Errorf("line %d: %w", line+1, err)
	}
	return im.Stats, im.Flush()
}
