package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// The write-ahead log (the file <db>-wal) lets the writer answer a batch of
// reports once they are on disk there, one sequential write and one
// fdatasync, instead of once the bbolt transaction holding them has
// committed (its pages, two fsyncs, and the CPU of a tree spill for every
// batch). While reports keep coming the writer keeps one bbolt transaction
// open across batches, logging each batch's stored records, and commits it
// every commitEvery (as etcd runs bbolt behind its own WAL); when nothing
// else is queued it commits at once and answers after the commit, so a
// client that has all its answers reads its reports back.
//
// A frame is
//
//	length   u32, of the payload
//	crc      u32, CRC-32C of seq and payload
//	seq      u64, one more than the frame before
//	payload  one record (appendLogRecord)
//
// Meta "wal" holds the highest seq the database holds: it is written in the
// same transaction as the records. After every successful commit the log
// holds nothing the database lacks, so the next frame is written at offset
// 0 again: the file never grows past what one open transaction logged. What
// the database lacks are the frames from offset 0 on whose seqs follow one
// another and exceed meta "wal"; a torn frame (bad CRC), a stale one (an
// older seq) or the end stops the chain. Open, and the first transaction
// after a failed commit, apply those frames again, with their keys.
type wal struct {
	f    *os.File
	path string

	off       int64  // where the next frame goes
	next      uint64 // seq of the next frame
	committed uint64 // the highest seq in the database (meta "wal")
	replays   int    // transactions that applied frames again

	buf []byte // of append, kept for the next
}

var walKey = []byte("wal")

// errLogFull says the open transaction has logged maxLogBytes: commit it.
var errLogFull = errors.New("write-ahead log full")

// Limits of the log.
const (
	// maxLogBytes is what the writer logs before it commits instead.
	maxLogBytes = 16 << 20
	// maxFrame bounds one frame's payload: a record holds a zone, a
	// beacon and a location of bounded lengths, well under 2 KiB.
	maxFrame = 8 << 10
	// maxLogRead bounds what Open reads of a log (a hostile or foreign
	// file must not cost unbounded memory): twice what the writer writes.
	maxLogRead = 2 * maxLogBytes

	frameHeader = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameCRC is the checksum of a frame: its seq bytes, then its payload.
func frameCRC(seq, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(seq, castagnoli), castagnoli, payload)
}

// LogPath is the write-ahead log of the database at path.
func LogPath(path string) string { return path + "-wal" }

// openWAL opens (or creates) the log of the database at path, whose meta
// "wal" is committed, and finds the frames the database lacks (read by
// unstoredRecords). problems name frames that held no record.
func openWAL(path string, committed uint64) (*wal, []string, error) {
	lp := LogPath(path)
	fi, statErr := os.Stat(lp)
	if statErr == nil && !fi.Mode().IsRegular() {
		return nil, nil, notRegular(lp, fi)
	}
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE|unix.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening write-ahead log %q: %w", lp, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close() // replaced between the two looks
		if err == nil {
			err = notRegular(lp, fi)
		}
		return nil, nil, err
	}
	if os.IsNotExist(statErr) {
		// A power cut must not lose the file's name once frames in it
		// have been answered.
		if d, err := os.Open(filepath.Dir(lp)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	l := &wal{f: f, path: lp, committed: committed, next: committed + 1}
	_, last, end, problems := l.scan()
	if last > committed {
		// Frames the database lacks: the first transaction applies them
		// and sets meta "wal" to last.
		l.next, l.off = last+1, end
	}
	return l, problems, nil
}

// ReadLog reads the write-ahead log of the database at path, without
// writing it: the records of its frames after seq committed (the
// database's meta "wal"), and the frames that held no record. No log is no
// record.
func ReadLog(path string, committed uint64) ([]*Record, []string, error) {
	lp := LogPath(path)
	f, err := os.OpenFile(lp, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		if err == nil {
			err = notRegular(lp, fi)
		}
		return nil, nil, err
	}
	l := &wal{f: f, committed: committed}
	recs, _, _, problems := l.scan()
	return recs, problems, nil
}

// notRegular is the error for a log path that holds no regular file: a
// FIFO or a device would make Open wait or read without end.
func notRegular(lp string, fi os.FileInfo) error {
	return fmt.Errorf("write-ahead log %q is not a regular file (%v)", lp, fi.Mode().Type())
}

// scan reads the chain of frames from offset 0 and returns the records of
// those after l.committed, the last seq of the chain and where it ends.
// Damage past the chain is not an error: it is where a crash cut a write
// (a read error ends the chain too). problems name frames that were whole
// but held no record.
func (l *wal) scan() (recs []*Record, last uint64, end int64, problems []string) {
	r := bufio.NewReaderSize(io.NewSectionReader(l.f, 0, maxLogRead), 64<<10)
	var hdr [frameHeader]byte
	payload := make([]byte, 0, 1024)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return recs, last, end, problems // the end, or a frame cut short
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		seq := binary.BigEndian.Uint64(hdr[8:16])
		if n == 0 || n > maxFrame || (last != 0 && seq != last+1) {
			return recs, last, end, problems
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return recs, last, end, problems
		}
		if frameCRC(hdr[8:16], payload) != binary.BigEndian.Uint32(hdr[4:8]) {
			return recs, last, end, problems
		}
		last, end = seq, end+frameHeader+int64(n)
		if seq <= l.committed {
			continue // in the database already
		}
		rec, err := decodeLogRecord(payload)
		if err != nil {
			problems = append(problems, fmt.Sprintf("frame %d: %v", seq, err))
			continue
		}
		recs = append(recs, rec)
	}
}

// unstored is the number of frames the log holds that the database lacks.
func (l *wal) unstored() int { return int(l.next - 1 - l.committed) }

// unstoredRecords reads back the frames the database lacks (after a failed
// commit rolled them back).
func (l *wal) unstoredRecords() ([]*Record, []string) {
	recs, _, _, problems := l.scan()
	return recs, problems
}

// append writes recs as frames after the last one and waits until they are
// on disk. It returns the seq of the last frame. On an error nothing is
// taken as written: the next append goes to the same place. errLogFull
// says the open transaction has logged enough: commit it instead.
func (l *wal) append(recs []*Record) (uint64, error) {
	b := l.buf[:0]
	seq := l.next
	for _, rec := range recs {
		start := len(b)
		b = appendLogRecord(append(b, make([]byte, frameHeader)...), rec)
		if len(b)-start-frameHeader > maxFrame {
			return 0, errors.New("write-ahead log: record too large")
		}
		sealFrame(b[start:], seq)
		seq++
	}
	l.buf = b[:0]
	if l.off+int64(len(b)) > maxLogBytes {
		return 0, errLogFull
	}
	if _, err := l.f.WriteAt(b, l.off); err != nil {
		return 0, fmt.Errorf("write-ahead log: %w", err)
	}
	if err := unix.Fdatasync(int(l.f.Fd())); err != nil {
		return 0, fmt.Errorf("write-ahead log: %w", err)
	}
	l.off += int64(len(b))
	l.next = seq
	return seq - 1, nil
}

// sealFrame writes the header of frame (frameHeader bytes, then the
// payload): its length, seq and checksum.
func sealFrame(frame []byte, seq uint64) {
	binary.BigEndian.PutUint32(frame[0:4], uint32(len(frame)-frameHeader))
	binary.BigEndian.PutUint64(frame[8:16], seq)
	binary.BigEndian.PutUint32(frame[4:8], frameCRC(frame[8:16], frame[frameHeader:]))
}

// committedThrough is told that the database now holds every frame up to
// seq: when that is all of them, the next frame goes to offset 0.
func (l *wal) committedThrough(seq uint64) {
	l.committed = max(l.committed, seq)
	if l.unstored() == 0 {
		l.off = 0
	}
}

// close closes the log and, when the database holds all
// of it, removes the file: a database closed cleanly is one file.
func (l *wal) close() error {
	err := l.f.Close()
	if l.unstored() == 0 {
		if e := os.Remove(l.path); e != nil && !os.IsNotExist(e) && err == nil {
			err = e
		}
	}
	return err
}

// A logged record (a frame's payload) is the whole record, not numbers into
// the dictionaries, whose rows a failed commit may have rolled back:
//
//	version   byte, logVersion
//	key       u64, the record key the writer gave it
//	flags     byte, flagEpoch
//	epoch     zigzag varint (flagEpoch)
//	zone      string
//	resolver  address
//	ecs       prefix
//	place     string holding a place (appendPlace)
//	beacon    string
const logVersion = 1

func appendLogRecord(b []byte, rec *Record) []byte {
	b = append(b, logVersion)
	b = binary.BigEndian.AppendUint64(b, rec.Key)
	if rec.Report.HasEpoch {
		b = append(b, flagEpoch)
		b = binary.AppendVarint(b, rec.Report.Epoch)
	} else {
		b = append(b, 0)
	}
	b = appendString(b, rec.Zone)
	b = appendAddr(b, rec.Resolver)
	b = appendPrefix(b, rec.ECS)
	var buf [128]byte
	place := appendPlace(buf[:0], &rec.Geo)
	b = binary.AppendUvarint(b, uint64(len(place)))
	b = append(b, place...)
	return appendString(b, rec.Report.Beacon)
}

func decodeLogRecord(v []byte) (*Record, error) {
	d := decoder{b: v}
	if d.byte() != logVersion {
		return nil, errors.New("unknown record version")
	}
	rec := &Record{Key: d.uint64()}
	if rec.Key == 0 || rec.Key > MaxKey {
		return nil, errors.New("key out of range")
	}
	rec.Received = time.Unix(0, int64(rec.Key)).UTC()
	flags := d.byte()
	var epoch int64
	if flags&flagEpoch != 0 {
		epoch = d.varint()
	}
	rec.Zone = d.string()
	rec.Resolver = d.addr()
	rec.ECS = d.prefix()
	place := d.string()
	beacon := d.string()
	if d.err != nil {
		return nil, d.err
	}
	g, err := decodePlace([]byte(place))
	if err != nil {
		return nil, fmt.Errorf("location: %w", err)
	}
	rec.Geo = g
	if rec.Report, err = codec.ParseBeacon(beacon); err != nil {
		return nil, fmt.Errorf("beacon: %w", err)
	}
	if flags&flagEpoch != 0 {
		rec.Report.Epoch, rec.Report.HasEpoch = epoch, true
	}
	return rec, nil
}

// problemList is problems for a log line: "" or "; " and the first few.
func problemList(problems []string) string {
	if len(problems) == 0 {
		return ""
	}
	s := "; unreadable: " + strings.Join(problems[:min(3, len(problems))], "; ")
	if len(problems) > 3 {
		s += fmt.Sprintf("; and %d more", len(problems)-3)
	}
	return s
}
