package store

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	bolt "go.etcd.io/bbolt"
)

// Rollups are kept so summaries never scan raw records (which retention may
// delete). They are written in the transaction that stores the reports, so
// they can never disagree with what was acknowledged.
//
// Every stored record gets an installation number: the first record of each
// InstallationKey assigns the next uint32, and the installations bucket
// appends number -> InstallationHash (appends, so a new installation costs no
// random B-tree write; the writer keeps the reverse index in memory). The
// rollup bucket then holds, per period and per dimension value, the count of
// reports and a roaring bitmap of installation numbers, so distinct
// installations over any set of periods are an exact bitmap union:
//
//	'd' day(4)   dim(1) value -> uvarint reports, roaring bitmap   (UTC days)
//	'm' month(4) dim(1) value -> same                              (UTC months)
//	'h' hour(4)  dim(1) value -> uvarint reports                   (modsec, platform, country, total)
//
// A summary over a year reads at most 12 months and the days at the ends.
var (
	rollupBucket       = []byte("rollup")
	installationBucket = []byte("installations")

	rollupVersionKey = []byte("rollup_version")
	nextInstallKey   = []byte("installation_next")
)

// rollupVersion changes when the rollup layout or its dimensions change;
// Open rebuilds rollups written by another version.
const rollupVersion = 2

// Dimension is a field the rollups break reports down by.
type Dimension byte

// Dimensions of the rollups.
const (
	DimTotal    Dimension = '0' // one value, "": every report
	DimModsec   Dimension = 'm'
	DimPlatform Dimension = 'p' // server product without version: Apache, nginx, IIS
	DimServer   Dimension = 's' // product/version, without the comment: Apache/2.4.71
	DimAPR      Dimension = 'a' // loaded version, else compiled
	DimPCRE     Dimension = 'c' // loaded version, else compiled (PCRE2 builds send no loaded)
	DimLua      Dimension = 'l'
	DimLibxml   Dimension = 'x'
	DimCountry  Dimension = 'C' // ISO code, "" when unknown
	DimID       Dimension = 'i' // the raw id field
	DimCombo    Dimension = 'k' // modsec, server, apr, pcre, lua, libxml joined by NUL
	DimPoint    Dimension = 'P' // "lat,lon" rounded to one decimal, only with a City database
)

var allDims = []Dimension{DimTotal, DimModsec, DimPlatform, DimServer, DimAPR, DimPCRE, DimLua, DimLibxml, DimCountry, DimID, DimCombo, DimPoint}

// hourly are the dimensions with hour counts, for timeseries.
var hourly = []Dimension{DimTotal, DimModsec, DimPlatform, DimCountry}

const (
	periodDay   = 'd'
	periodMonth = 'm'
	periodHour  = 'h'
)

// Platform is the server product without its version: "Apache/2.4.71
// (Debian)" gives "Apache", "Microsoft-IIS/10.0" and "IIS" give "IIS".
func Platform(server string) string {
	p := server
	if i := strings.IndexAny(p, "/ "); i >= 0 {
		p = p[:i]
	}
	p = strings.TrimPrefix(p, "Microsoft-")
	if p == "" {
		return server
	}
	return p
}

// ServerVersion is the server signature without its trailing comment:
// "Apache/2.4.71 (Debian)" gives "Apache/2.4.71".
func ServerVersion(server string) string {
	if i := strings.IndexByte(server, ' '); i > 0 {
		return server[:i]
	}
	return server
}

func loadedElseCompiled(loaded, compiled string) string {
	if loaded != "" {
		return loaded
	}
	return compiled
}

// DimValue is the value of dimension d for rec, as the rollups store it.
func DimValue(rec *Record, d Dimension) string {
	rep := &rec.Report
	switch d {
	case DimModsec:
		return rep.Modsec
	case DimPlatform:
		return Platform(rep.Server)
	case DimServer:
		return ServerVersion(rep.Server)
	case DimAPR:
		return loadedElseCompiled(rep.APRLoaded, rep.APRCompiled)
	case DimPCRE:
		return loadedElseCompiled(rep.PCRELoaded, rep.PCRECompiled)
	case DimLua:
		return rep.Lua
	case DimLibxml:
		return rep.Libxml
	case DimCountry:
		return rec.Geo.Country
	case DimID:
		return rep.ID
	case DimCombo:
		return strings.Join([]string{rep.Modsec, ServerVersion(rep.Server), DimValue(rec, DimAPR),
			DimValue(rec, DimPCRE), rep.Lua, rep.Libxml}, "\x00")
	case DimPoint:
		if !rec.Geo.HasPoint {
			return ""
		}
		return strconv.FormatFloat(round1(rec.Geo.Lat), 'f', 1, 64) + "," + strconv.FormatFloat(round1(rec.Geo.Lon), 'f', 1, 64)
	}
	return ""
}

func round1(f float64) float64 {
	r := math.Round(f*10) / 10
	if r == 0 {
		return 0 // no "-0.0"
	}
	return r
}

// InstallationHash is the first 8 bytes of SHA-256 of InstallationKey: the
// installation's identity in the rollups and the API.
func InstallationHash(rec *Record) [8]byte {
	h := sha256.Sum256([]byte(InstallationKey(rec)))
	var k [8]byte
	copy(k[:], h[:8])
	return k
}

type rollupKey struct {
	period byte
	n      uint32
	dim    Dimension
	value  string
}

func (k rollupKey) bytes() []byte {
	b := make([]byte, 0, 6+len(k.value))
	b = append(b, k.period)
	b = binary.BigEndian.AppendUint32(b, k.n)
	b = append(b, byte(k.dim))
	return append(b, k.value...)
}

type rollupDelta struct {
	reports uint64
	ids     []uint32 // installation numbers; hour counts have none
	hasIDs  bool
	pending []*roaring.Bitmap // more installation numbers, from pending merges
}

// rollupBatch gathers the rollup changes of one transaction, then writes each
// touched key once.
type rollupBatch struct {
	tx     *bolt.Tx
	cache  *rollupCache
	deltas map[rollupKey]*rollupDelta
}

// rollupCache keeps the decoded rollups the writer touched last, so a commit
// does not read and decode the same growing bitmaps again. It is used only
// when the last committed transaction was the one that filled it: a failed
// commit, a rebuild or any other writer (retention) in between empties it.
type rollupCache struct {
	committed int // ID of the last transaction that updated the cache and committed
	vals      map[string]*cachedRollup

	// The installation index: InstallationHash -> number. ids holds numbers
	// known committed; pending those the open transaction assigned.
	ids     map[uint64]uint32
	loaded  bool
	pending map[uint64]uint32

	// pastChanged tells that the open transaction wrote rollups of a day
	// before today (or an earlier month); its commit makes the readers'
	// cache of past days stale.
	pastChanged bool
	closed      closedCache
}

type cachedRollup struct {
	reports uint64
	ids     *roaring.Bitmap
}

// maxCachedRollups bounds the cache; today's and this month's keys fit.
const maxCachedRollups = 1 << 16

func newRollupBatch(tx *bolt.Tx, cache *rollupCache) *rollupBatch {
	if cache.vals == nil || cache.committed != tx.ID()-1 || len(cache.vals) > maxCachedRollups {
		cache.vals = map[string]*cachedRollup{}
	}
	if !cache.loaded {
		cache.load(tx)
	}
	// Until this transaction commits the cache may hold what it never
	// wrote; committed names the transaction the cache matches.
	cache.committed = -1
	cache.pending = map[uint64]uint32{}
	cache.pastChanged = false
	tx.OnCommit(func() {
		for h, id := range cache.pending {
			cache.ids[h] = id
		}
		cache.pending = nil
		cache.committed = tx.ID()
		if cache.pastChanged {
			cache.closed.gen.Add(1)
		}
	})
	return &rollupBatch{tx: tx, cache: cache, deltas: map[rollupKey]*rollupDelta{}}
}

// load reads the installation index from the bucket.
func (c *rollupCache) load(tx *bolt.Tx) {
	c.ids = make(map[uint64]uint32, getUint(tx.Bucket(metaBucket), nextInstallKey))
	if b := tx.Bucket(installationBucket); b != nil {
		b.ForEach(func(k, v []byte) error {
			if len(k) == 4 && len(v) == 8 {
				c.ids[binary.BigEndian.Uint64(v)] = binary.BigEndian.Uint32(k)
			}
			return nil
		})
	}
	c.pending = nil
	c.loaded = true
}

func dayOf(t time.Time) uint32 { return uint32(t.Unix() / 86400) }

func monthOf(t time.Time) uint32 {
	t = t.UTC()
	return uint32(t.Year()*12 + int(t.Month()) - 1)
}

func hourOf(t time.Time) uint32 { return uint32(t.Unix() / 3600) }

// add counts rec, which the same transaction has just stored.
func (rb *rollupBatch) add(rec *Record) error {
	id, err := rb.installationNumber(rec)
	if err != nil {
		return err
	}
	day, month, hour := dayOf(rec.Received), monthOf(rec.Received), hourOf(rec.Received)
	for _, d := range allDims {
		v := DimValue(rec, d)
		if d == DimPoint && v == "" {
			continue
		}
		rb.bump(rollupKey{periodDay, day, d, v}, id, d != DimID)
		rb.bump(rollupKey{periodMonth, month, d, v}, id, d != DimID)
	}
	for _, d := range hourly {
		k := rollupKey{periodHour, hour, d, DimValue(rec, d)}
		delta := rb.deltas[k]
		if delta == nil {
			delta = &rollupDelta{}
			rb.deltas[k] = delta
		}
		delta.reports++
	}
	return nil
}

// bump counts one report of installation id under k; withIDs keeps the
// installation (ids only count values, so they need no sets).
func (rb *rollupBatch) bump(k rollupKey, id uint32, withIDs bool) {
	delta := rb.deltas[k]
	if delta == nil {
		delta = &rollupDelta{hasIDs: withIDs}
		rb.deltas[k] = delta
	}
	delta.reports++
	if withIDs {
		delta.ids = append(delta.ids, id)
	}
}

// flush merges the gathered changes into the stored rollups.
func (rb *rollupBatch) flush() error {
	b := rb.tx.Bucket(rollupBucket)
	// New keys land at the end of their period's run: mostly appends, which
	// the default 50% split leaves half empty.
	b.FillPercent = 0.9
	now := time.Now()
	today, thisMonth := dayOf(now), monthOf(now)
	// In key order: a merge brings thousands of new keys (ids, combinations)
	// and bbolt inserts into a sorted slice per node, so random order
	// costs a memmove per key.
	keys := make([]rollupKey, 0, len(rb.deltas))
	for k := range rb.deltas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rollupKey) int {
		return cmp.Or(cmp.Compare(a.period, b.period), cmp.Compare(a.n, b.n), cmp.Compare(a.dim, b.dim), strings.Compare(a.value, b.value))
	})
	for _, k := range keys {
		delta := rb.deltas[k]
		if (k.period == periodDay && k.n < today) || (k.period == periodMonth && k.n < thisMonth) {
			rb.cache.pastChanged = true
		}
		key := k.bytes()
		c := rb.cache.vals[string(key)]
		if c == nil {
			reports, ids, err := decodeRollup(b.Get(key), delta.hasIDs, false)
			if err != nil {
				return fmt.Errorf("rollup %q: %w", key, err)
			}
			if delta.hasIDs && ids == nil {
				ids = roaring.New()
			}
			c = &cachedRollup{reports: reports, ids: ids}
			rb.cache.vals[string(key)] = c
		}
		c.reports += delta.reports
		val := binary.AppendUvarint(make([]byte, 0, 16), c.reports)
		if delta.hasIDs {
			before := c.ids.GetCardinality()
			c.ids.AddMany(delta.ids)
			for _, p := range delta.pending {
				c.ids.Or(p)
			}
			if c.ids.GetCardinality() != before || before == 0 {
				c.ids.RunOptimize()
			}
			bm, err := c.ids.ToBytes()
			if err != nil {
				return err
			}
			val = append(val, bm...)
		}
		if err := b.Put(key, val); err != nil {
			return err
		}
	}
	return nil
}

var errBadRollup = errors.New("unreadable rollup value")

// decodeRollup reads a rollup value. With zeroCopy the bitmap points into v,
// which must then stay mapped and unmodified while it is used.
func decodeRollup(v []byte, withIDs, zeroCopy bool) (uint64, *roaring.Bitmap, error) {
	if v == nil {
		return 0, nil, nil
	}
	reports, n := binary.Uvarint(v)
	if n <= 0 {
		return 0, nil, errBadRollup
	}
	if !withIDs {
		return reports, nil, nil
	}
	ids := roaring.New()
	var err error
	if zeroCopy {
		_, err = ids.FromBuffer(v[n:])
	} else {
		err = ids.UnmarshalBinary(v[n:])
	}
	if err != nil {
		return 0, nil, errBadRollup
	}
	return reports, ids, nil
}

// installationNumber returns rec's installation number, assigning the next
// one to an installation seen for the first time.
func (rb *rollupBatch) installationNumber(rec *Record) (uint32, error) {
	hb := InstallationHash(rec)
	h := binary.BigEndian.Uint64(hb[:])
	if id, ok := rb.cache.ids[h]; ok {
		return id, nil
	}
	if id, ok := rb.cache.pending[h]; ok {
		return id, nil
	}
	meta := rb.tx.Bucket(metaBucket)
	next := getUint(meta, nextInstallKey)
	if next > math.MaxUint32 {
		return 0, errors.New("installation numbers exhausted")
	}
	b := rb.tx.Bucket(installationBucket)
	b.FillPercent = 1 // numbers only grow: pack pages full
	if err := b.Put(binary.BigEndian.AppendUint32(nil, uint32(next)), hb[:]); err != nil {
		return 0, err
	}
	rb.cache.pending[h] = uint32(next)
	return uint32(next), putUint(meta, nextInstallKey, next+1)
}

// rollupsCurrent tells whether the rollups match this version's layout.
func rollupsCurrent(tx *bolt.Tx) bool {
	return tx.Bucket(rollupBucket) != nil && tx.Bucket(installationBucket) != nil &&
		getUint(tx.Bucket(metaBucket), rollupVersionKey) == rollupVersion
}

// rebuildChunk bounds the records one rebuild transaction counts.
const rebuildChunk = 20000

// RebuildRollups recomputes the rollups from the raw records, for databases
// written before rollups existed (Open does it when they are missing). Rollups
// of records that retention already deleted are lost by a rebuild.
func (s *Store) RebuildRollups() error {
	s.rollupMu.Lock()
	defer s.rollupMu.Unlock()
	if err := rebuildRollups(s.db, &s.rollupCache); err != nil {
		return err
	}
	// The rebuild counted every stored report, pending ones included.
	s.rollupPending.Store(&pendingRollups{gen: s.rollupPending.Load().gen})
	return nil
}

func rebuildRollups(db *bolt.DB, cache *rollupCache) error {
	cache.committed, cache.vals = 0, nil
	cache.ids, cache.loaded, cache.pending = nil, false, nil
	defer cache.closed.gen.Add(1)
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{rollupBucket, installationBucket, unrolledBucket} {
			if tx.Bucket(name) != nil {
				if err := tx.DeleteBucket(name); err != nil {
					return err
				}
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(metaBucket)
		if err := putUint(meta, nextInstallKey, 0); err != nil {
			return err
		}
		// Written last by the final chunk: a crash midway leaves it
		// missing, and the next Open starts over.
		return meta.Delete(rollupVersionKey)
	})
	if err != nil {
		return err
	}
	var after []byte
	for done := false; !done; {
		err := db.Update(func(tx *bolt.Tx) error {
			rb := newRollupBatch(tx, cache)
			c := tx.Bucket(reportsBucket).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			n := 0
			for ; k != nil && n < rebuildChunk; k, v = c.Next() {
				rec, err := unmarshal(k, v)
				if err != nil {
					continue
				}
				if err := rb.add(&rec); err != nil {
					return err
				}
				after = append(after[:0], k...)
				n++
			}
			if err := rb.flush(); err != nil {
				return err
			}
			if k == nil {
				done = true
				return putUint(tx.Bucket(metaBucket), rollupVersionKey, rollupVersion)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("rebuilding rollups: %w", err)
		}
	}
	return nil
}
