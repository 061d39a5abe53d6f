package wal

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
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statusengine/statusengine/plugin/statusengine/store/internal/bin"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
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
//	payload  one record (AppendRecord)
//
// Meta "wal" holds the highest seq the database holds: it is written in the
// same transaction as the records. After every successful commit the log
// holds nothing the database lacks, so the next frame is written at offset
// 0 again: the file never grows past what one open transaction logged. What
// the database lacks are the frames from offset 0 on whose seqs follow one
// another and exceed meta "wal"; a torn frame (bad CRC), a stale one (an
// older seq) or the end stops the chain. Open, and the first transaction
// after a failed commit, apply those frames again, with their keys.
type Log struct {
	F    *os.File
	Path string

	off       int64  // where the next frame goes
	Next      uint64 // seq of the next frame
	Committed uint64 // the highest seq in the database (meta "wal")
	Replays   int    // transactions that applied frames again
	readOnly  bool   // opened by OpenReadOnly: never written
	Told      bool   // a replay's line was written
	// Schemas reads the beacons of custom schemas' zones in the frames:
	// the file's (bucket schemas), known before the log is read.
	Schemas *record.Schemas

	Replayed ReplayStats // of the replay under way
	// resume is where the last bounded scan stopped (UnstoredRecords):
	// the next starts there once the database holds up to seq.
	resume struct {
		off int64
		seq uint64
	}

	buf []byte // of append, kept for the next
}

// ReplayStats sum up a replay of the log's frames over its transactions,
// for its one line.
type ReplayStats struct {
	Recs, Stored, Txns, Bad int
	Problems                []string // the first few
}

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

	FrameHeader = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameCRC is the checksum of a frame: its seq bytes, then its payload.
func frameCRC(seq, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(seq, castagnoli), castagnoli, payload)
}

// LogPath is the write-ahead log of the database at path.
func LogPath(path string) string { return path + "-wal" }

// Open opens (or creates) the log of the database at path, whose meta
// "wal" is committed, and finds the frames the database lacks (read by
// UnstoredRecords). problems name frames that held no record. A path that
// holds a file the store does not take for its log gives a
// *LogRefusedError (see openLogFile and ours).
func Open(path string, committed uint64, sc *record.Schemas) (*Log, []string, error) {
	lp := LogPath(path)
	f, created, err := openLogFile(lp, path, true)
	if err != nil {
		return nil, nil, err
	}
	if !created {
		if err := ours(f, lp, path); err != nil {
			f.Close()
			return nil, nil, err
		}
	} else {
		// A power cut must not lose the file's name once frames in it
		// have been answered.
		if d, err := os.Open(filepath.Dir(lp)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	l := &Log{F: f, Path: lp, Committed: committed, Next: committed + 1, Schemas: sc}
	problems := l.find()
	return l, problems, nil
}

// find scans the log for the frames the database lacks: the next frame
// goes after them.
func (l *Log) find() (problems []string) {
	_, last, end, problems := l.scan()
	if last > l.Committed {
		// Frames the database lacks: the first transactions apply them
		// and set meta "wal" to last.
		l.Next, l.off = last+1, end
	}
	return problems
}

// OpenReadOnly opens the log of the database at path read-only, for a
// log the store cannot write (Open failed: no permission, or not ours)
// that may hold answered reports: only the reading rules of openLogFile
// apply, and the frames are checked as always (checksum, the chain of
// seqs after committed, the record's validation). Nothing is written to
// it; close closes it without removing it.
func OpenReadOnly(path string, committed uint64, sc *record.Schemas) (*Log, []string, error) {
	lp := LogPath(path)
	f, _, err := openLogFile(lp, path, false)
	if err != nil {
		return nil, nil, err
	}
	l := &Log{F: f, Path: lp, Committed: committed, Next: committed + 1, readOnly: true, Schemas: sc}
	return l, l.find(), nil
}

// ReadLog reads the write-ahead log of the database at path, without
// writing it: the records of its frames after seq committed (the
// database's meta "wal"), and the frames that held no record. No log is no
// record. A log that is not ours (ours) gives its records and a
// *LogRefusedError: Open stores them too, reading it read-only; a path
// that is a symbolic link, no regular file or the database itself gives
// no record and the error.
func ReadLog(path string, committed uint64, sc *record.Schemas) ([]*record.Record, []string, error) {
	lp := LogPath(path)
	f, _, err := openLogFile(lp, path, false)
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	refused := ours(f, lp, path)
	l := &Log{F: f, Committed: committed, Schemas: sc}
	recs, _, _, problems := l.scan()
	return recs, problems, refused
}

// LogRefusedError says the path of a database's write-ahead log holds a
// file the store does not take for its log. The store then answers each
// report after its commit, and stores what such a file holds read-only
// when it can be read safely.
type LogRefusedError struct {
	Path string
	Why  string
}

// Error says which log was refused and why.
func (e *LogRefusedError) Error() string {
	return fmt.Sprintf("write-ahead log %s refused: %s", e.Path, e.Why)
}

// openLogFile opens the log lp of the database at dbPath, never through a
// symbolic link (O_NOFOLLOW: a link to the database would have the log
// written over it, a link to any other file would overwrite that file),
// never a file that is not regular (a FIFO would make Open wait for a
// writer, a device read without end) and never the database file itself
// (a hard link to it). These are the rules for reading it; writing it
// needs ours too. With write, a missing log is created (created says so),
// O_EXCL so that nothing put there meanwhile is followed or taken.
func openLogFile(lp, dbPath string, write bool) (f *os.File, created bool, err error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	fi, err := os.Lstat(lp)
	switch {
	case os.IsNotExist(err) && write:
		f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("creating write-ahead log %q: %w", lp, err)
		}
		return f, true, nil
	case err != nil:
		return nil, false, err
	case fi.Mode()&os.ModeSymlink != 0:
		return nil, false, symlinkRefused(lp)
	case !fi.Mode().IsRegular():
		return nil, false, notRegular(lp, fi)
	}
	f, err = os.OpenFile(lp, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, false, symlinkRefused(lp) // replaced between the two looks
	}
	if err != nil {
		return nil, false, fmt.Errorf("opening write-ahead log %q: %w", lp, err)
	}
	fi, err = f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(lp, fi) // replaced between the two looks
	}
	if err == nil {
		if db, e := os.Stat(dbPath); e == nil && os.SameFile(fi, db) {
			err = &LogRefusedError{Path: lp, Why: "it is the database file itself (a hard link to it)"}
		}
	}
	if err != nil {
		f.Close()
		return nil, false, err
	}
	return f, false, nil
}

func symlinkRefused(lp string) error {
	why := "it is a symbolic link"
	if to, err := os.Readlink(lp); err == nil {
		why += fmt.Sprintf(" (to %q)", to)
	}
	return &LogRefusedError{Path: lp, Why: why + ": the log is never written through a link"}
}

// notRegular is the error for a log path that holds no regular file: a
// FIFO or a device would make Open wait or read without end.
func notRegular(lp string, fi os.FileInfo) error {
	return &LogRefusedError{Path: lp, Why: fmt.Sprintf("it is not a regular file (%v)", fi.Mode().Type())}
}

// ours tells whether the existing log f (opened by openLogFile) is one the
// store may write: a file of its own (one link: a second name is another
// file's data), owned by the database file's owner, writable by no one
// else (mode bits for group and others), and either empty or starting
// with a frame header (a length from 1 to maxFrame; its checksum may fail,
// a crash can tear the first frame) or with zeros (a crash can leave
// those). Every file the store writes keeps these. A bbolt file starts
// with a page id of zeros and its flags: no frame.
func ours(f *os.File, lp, dbPath string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	refuse := func(format string, a ...any) error {
		return &LogRefusedError{Path: lp, Why: fmt.Sprintf(format, a...)}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return refuse("its owner cannot be read")
	}
	if st.Nlink > 1 {
		return refuse("it has %d names (a hard link): the log must be a file of its own", st.Nlink)
	}
	if db, err := os.Stat(dbPath); err == nil {
		if dst, ok := db.Sys().(*syscall.Stat_t); ok && dst.Uid != st.Uid {
			return refuse("it is owned by uid %d, the database by uid %d", st.Uid, dst.Uid)
		}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return refuse("others may write it (mode %v)", fi.Mode().Perm())
	}
	if fi.Size() == 0 {
		return nil
	}
	var hdr [FrameHeader]byte
	n, _ := f.ReadAt(hdr[:], 0)
	if !frameStart(hdr[:n]) {
		return refuse("it does not start with a log frame (%d bytes)", fi.Size())
	}
	return nil
}

// frameStart tells whether b, the first bytes of a file, can start a log.
func frameStart(b []byte) bool {
	zeros := true
	for _, c := range b {
		zeros = zeros && c == 0
	}
	if zeros {
		return true
	}
	if len(b) < 4 {
		return false
	}
	n := binary.BigEndian.Uint32(b)
	return n >= 1 && n <= maxFrame
}

// scan reads the chain of frames from offset 0 and returns the records of
// those after l.committed, the last seq of the chain and where it ends.
// Damage past the chain is not an error: it is where a crash cut a write
// (a read error ends the chain too). problems name frames that were whole
// but held no record.
func (l *Log) scan() (recs []*record.Record, last uint64, end int64, problems []string) {
	return l.scanN(0)
}

// scanN is scan, stopping before the frame that would make max records
// (0: no bound); last and end are then those of the frame before. A scan
// that goes on from where the last bounded one stopped (resume, once the
// database holds up to there) starts there instead of at offset 0.
func (l *Log) scanN(max int) (recs []*record.Record, last uint64, end int64, problems []string) {
	if l.resume.seq != 0 && l.resume.seq == l.Committed {
		last, end = l.resume.seq, l.resume.off
	}
	r := bufio.NewReaderSize(io.NewSectionReader(l.F, end, maxLogRead-end), 64<<10)
	var hdr [FrameHeader]byte
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
		if max > 0 && len(recs) == max && seq > l.Committed {
			return recs, last, end, problems
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return recs, last, end, problems
		}
		if frameCRC(hdr[8:16], payload) != binary.BigEndian.Uint32(hdr[4:8]) {
			return recs, last, end, problems
		}
		last, end = seq, end+FrameHeader+int64(n)
		if seq <= l.Committed {
			continue // in the database already
		}
		rec, err := DecodeRecord(payload, l.Schemas)
		if err != nil {
			problems = append(problems, fmt.Sprintf("frame %d: %v", seq, err))
			continue
		}
		recs = append(recs, rec)
	}
}

// Unstored is the number of frames the log holds that the database lacks.
func (l *Log) Unstored() int { return int(l.Next - 1 - l.Committed) }

// ReplayChunk bounds the frames one transaction applies again: a
// transaction's memory grows with the records it writes (bbolt keeps every
// changed page and node until the commit), and a log of maxLogRead applied
// at once took 454 MB where the server otherwise runs in 92 MB.
var ReplayChunk = 4096

// UnstoredRecords reads back frames the database lacks (after a failed
// commit rolled them back, or a crash kept them from their commit): those
// of at most ReplayChunk records from the first, and top, the seq of the
// last frame they reach. top < l.next-1 says more follow: the transaction
// applying these must commit before the next chunk (meta "wal" = top).
func (l *Log) UnstoredRecords() (recs []*record.Record, top uint64, problems []string) {
	recs, top, end, problems := l.scanN(ReplayChunk)
	if top < l.Next-1 {
		l.resume.off, l.resume.seq = end, top
	}
	return recs, top, problems
}

// Append writes recs as frames after the last one and waits until they are
// on disk. It returns the seq of the last frame. On an error nothing is
// taken as written: the next append goes to the same place. errLogFull
// says the open transaction has logged enough: commit it instead.
func (l *Log) Append(recs []*record.Record) (uint64, error) {
	b := l.buf[:0]
	seq := l.Next
	for _, rec := range recs {
		start := len(b)
		b = AppendRecord(append(b, make([]byte, FrameHeader)...), rec)
		if len(b)-start-FrameHeader > maxFrame {
			return 0, errors.New("write-ahead log: record too large")
		}
		SealFrame(b[start:], seq)
		seq++
	}
	l.buf = b[:0]
	if l.off+int64(len(b)) > maxLogBytes {
		return 0, errLogFull
	}
	if _, err := l.F.WriteAt(b, l.off); err != nil {
		return 0, fmt.Errorf("write-ahead log: %w", err)
	}
	if err := unix.Fdatasync(int(l.F.Fd())); err != nil {
		return 0, fmt.Errorf("write-ahead log: %w", err)
	}
	l.off += int64(len(b))
	l.Next = seq
	return seq - 1, nil
}

// SealFrame writes the header of frame (FrameHeader bytes, then the
// payload): its length, seq and checksum.
func SealFrame(frame []byte, seq uint64) {
	binary.BigEndian.PutUint32(frame[0:4], uint32(len(frame)-FrameHeader))
	binary.BigEndian.PutUint64(frame[8:16], seq)
	binary.BigEndian.PutUint32(frame[4:8], frameCRC(frame[8:16], frame[FrameHeader:]))
}

// CommittedThrough is told that the database now holds every frame up to
// seq: when that is all of them, the next frame goes to offset 0.
func (l *Log) CommittedThrough(seq uint64) {
	l.Committed = max(l.Committed, seq)
	if l.Unstored() == 0 {
		l.off = 0
		l.resume.off, l.resume.seq = 0, 0
	}
}

// Close closes the log and, when the database holds all
// of it, removes the file: a database closed cleanly is one file.
func (l *Log) Close() error {
	err := l.F.Close()
	if l.Unstored() == 0 && !l.readOnly {
		if e := os.Remove(l.Path); e != nil && !os.IsNotExist(e) && err == nil {
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
//	flags     byte, record.FlagEpoch
//	epoch     zigzag varint (record.FlagEpoch)
//	zone      string
//	resolver  address
//	ecs       prefix
//	place     string holding a place (record.AppendPlace)
//	beacon    string
const logVersion = 1

// AppendRecord appends rec's frame payload, the layout above.
func AppendRecord(b []byte, rec *record.Record) []byte {
	b = append(b, logVersion)
	b = binary.BigEndian.AppendUint64(b, rec.Key)
	if rec.Report.HasEpoch {
		b = append(b, record.FlagEpoch)
		b = binary.AppendVarint(b, rec.Report.Epoch)
	} else {
		b = append(b, 0)
	}
	b = bin.AppendString(b, rec.Zone)
	b = bin.AppendAddr(b, rec.Resolver)
	b = bin.AppendPrefix(b, rec.ECS)
	var buf [128]byte
	place := record.AppendPlace(buf[:0], &rec.Geo)
	b = binary.AppendUvarint(b, uint64(len(place)))
	b = append(b, place...)
	return bin.AppendString(b, rec.Report.Beacon)
}

// DecodeRecord reads a frame payload of AppendRecord, its beacon with the
// zone's schema in sc.
func DecodeRecord(v []byte, sc *record.Schemas) (*record.Record, error) {
	d := bin.Decoder{B: v}
	if d.Byte() != logVersion {
		return nil, errors.New("unknown record version")
	}
	rec := &record.Record{Key: d.Uint64()}
	if rec.Key == 0 || rec.Key > record.MaxKey {
		return nil, errors.New("key out of range")
	}
	rec.Received = time.Unix(0, int64(rec.Key)).UTC()
	flags := d.Byte()
	var epoch int64
	if flags&record.FlagEpoch != 0 {
		epoch = d.Varint()
	}
	rec.Zone = d.Str()
	rec.Resolver = d.Addr()
	rec.ECS = d.Prefix()
	place := d.Str()
	beacon := d.Str()
	if d.Err != nil {
		return nil, d.Err
	}
	g, err := record.DecodePlace([]byte(place))
	if err != nil {
		return nil, fmt.Errorf("location: %w", err)
	}
	rec.Geo = g
	if rec.Report, err = sc.Parse(rec.Zone, beacon); err != nil {
		return nil, fmt.Errorf("beacon: %w", err)
	}
	if flags&record.FlagEpoch != 0 {
		rec.Report.Epoch, rec.Report.HasEpoch = epoch, true
	}
	return rec, nil
}

// ProblemList is problems for a log line: "" or "; " and the first few.
func ProblemList(problems []string) string {
	if len(problems) == 0 {
		return ""
	}
	s := "; unreadable: " + strings.Join(problems[:min(3, len(problems))], "; ")
	if len(problems) > 3 {
		s += fmt.Sprintf("; and %d more", len(problems)-3)
	}
	return s
}
