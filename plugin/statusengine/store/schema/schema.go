// Package schema names every bbolt bucket and meta key the store and its
// packages read or write, in one place (as etcd's schema/bucket.go). The
// store's doc.go table says what each holds and how it is rebuilt;
// TestSchemaDocumented keeps the two, and a store's file, in step, and
// TestSchemaInOneFile keeps every name here. A name changed here is a new
// file format.
package schema

// FormatVersion is this layout's, in meta "format". Version 1 (no format
// key, reports in bucket "reports") is migrated at Open.
const FormatVersion = 2

// Buckets of format 2, this layout.
var (
	// Records holds the reports: receive time (unix ns, 8 bytes) ->
	// the record, its strings as numbers into the dictionaries (record/encode.go).
	Records = []byte("records")
	// Zones is a dictionary: number (4 bytes) -> zone name.
	Zones = []byte("zones")
	// Places is a dictionary: number -> location (country, names,
	// point, source).
	Places = []byte("places")
	// Builds is a dictionary: number -> beacon head, every field but
	// the id.
	Builds = []byte("builds")
	// Installations is a dictionary: number -> build, source network and
	// id, the installation estimate. Format 1 had a derived bucket of the
	// same name (LegacyDerived), dropped before migration.
	Installations = []byte("installations")
	// Resolvers: installation number -> the /24 or /48 of the
	// resolver of its first report, for the public floor. It came after
	// format 2's first files: Open adds it, and Check does not ask for it
	// (an installation without a row counts its source network).
	Resolvers = []byte("resolvers")
	// Index: dictionary tag + SHA-256 prefix of a value -> its
	// number, for the rows up to meta indexed.<dictionary> (dict.go).
	Index = []byte("index")
	// Seen makes a report that arrives again (a resolver's retry,
	// another resolver, another name server's copy) a duplicate: one key
	// per stored record, no value. The key (seenKey, seen.go) is what
	// identifies one start of one installation:
	//
	//	6 bytes  client epoch, big-endian; for a name without an epoch label,
	//	         noEpoch | the receive time cut to Options.NoEpochWindow
	//	8 bytes  SHA-256 of the beacon, first bytes
	//
	// Client clocks are near the receive time, so new keys land near the
	// end of the tree, as appends do.
	Seen = []byte("seen")
	// Rollups: period (hour, day, month) -> its sums up to meta
	// "rolled" (rollup/period.go); rollup/live.go holds the periods being changed.
	Rollups = []byte("rollups")
	// Snapshots: day number (4 bytes) -> the public document the API
	// rendered for that UTC day once it was over, of ModSecurity's zones;
	// day number and a zone's name -> that of a zone of a custom schema
	// (store/snapshots.go). Kept as written, so that
	// every later request gets the same bytes, across restarts and imports
	// alike; retention never deletes them.
	Snapshots = []byte("snapshots")
	// Peers holds live replication's cursors: peer URL -> the key of
	// the last record taken (8 bytes), then the unix time of the last pull
	// that reached the peer's newest record (8 bytes), so a restart resumes
	// where it stopped; and ImportsCursorKey(URL) -> the imports cursor.
	Peers = []byte("peers")
	// Imports lists the imported records, as they are stored: a
	// sequence number (8 bytes, the bucket's NextSequence, so the order of
	// the commits) -> the record's key (8 bytes). An import keeps each
	// record's receive time, so a record imported today but received
	// yesterday gets a key below the peers' cursors, which would never see
	// it; peers pull this list too, after a second cursor (ImportedAfter).
	// Records pulled from a peer are not listed: every server of a mesh
	// pulls them from the one that received or imported them. Optional:
	// Open adds it, and an older statusengine ignores it.
	Imports = []byte("imports")
	// Outbox lists the records this server stored itself (live reports,
	// imports), not yet acknowledged by a NATS JetStream stream (the
	// store's outbox.go): a sequence number (8 bytes) -> the keys (8 bytes
	// each, at most 1024) of the records one transaction stored; a key
	// done is zeroed, a row of zeros deleted. Only EnableOutbox makes it;
	// while it exists, every record not taken from elsewhere is listed as
	// it is stored, and the publisher marks done the entries the stream
	// acknowledged (2 minutes later: package fleet).
	Outbox = []byte("outbox")
	// Schemas: zone name -> its custom schema, the spec as JSON
	// (record.AppendSchema). A zone without a row is ModSecurity's. Written
	// when the plugin names a zone's schema (Store.SetSchema), read at Open
	// before the write-ahead log, so that the log's frames, the builds of
	// custom zones, Check, salvage and export read beacons without a
	// Corefile. Optional: Open adds it, and an older statusengine ignores it.
	Schemas = []byte("schemas")
	// Meta holds the file's single values, the meta keys below, 8
	// bytes each (putUint).
	Meta = []byte("meta")
)

// BucketsV2 are the buckets Check and salvage ask of a format 2 file.
var BucketsV2 = [][]byte{Records, Seen, Zones, Places, Builds, Installations,
	Index, Rollups, Meta, Peers, Snapshots}

// Buckets are every bucket Open makes: BucketsV2 and those added since.
var Buckets = append(BucketsV2[:len(BucketsV2):len(BucketsV2)], Resolvers, Imports, Schemas)

// OptionalBuckets are made on demand, never by Open: their presence is a
// setting of the file.
var OptionalBuckets = [][]byte{Outbox}

// Keys of meta, each 8 bytes.
var (
	// FormatKey is the layout's version: FormatVersion, or migrating while
	// a format 1 file is migrated. Absent in a format 1 file.
	FormatKey = []byte("format")
	// CountKey is the number of records in bucket records.
	CountKey = []byte("count")
	// RolledKey is the rollups' watermark: the records up to this key are
	// in bucket rollups; those after it are replayed into live at Open.
	RolledKey = []byte("rolled")
	// RebuildingKey is present while a recomputation of the rollups from
	// the records is under way (replay.go), so that Open starts it over.
	RebuildingKey = []byte("rebuilding")
	// WalKey is the highest seq of the write-ahead log's frames the file
	// holds, written in the same transaction as their records (wal/wal.go).
	WalKey = []byte("wal")
)

// IndexedKey is the meta key of a dictionary's index watermark,
// indexed.<its bucket>: its rows up to this number are in bucket index, the
// rest are in memory (dict.recent) and rebuilt from the rows at Open.
func IndexedKey(dict string) []byte { return []byte("indexed." + dict) }

// MetaKeys are every key meta holds in format 2, the dictionaries' index
// watermarks among them.
var MetaKeys = [][]byte{FormatKey, CountKey, RolledKey, RebuildingKey, WalKey,
	IndexedKey(string(Zones)), IndexedKey(string(Places)),
	IndexedKey(string(Builds)), IndexedKey(string(Installations))}

// ImportsCursorKey is where, in bucket peers, the Imports cursor of peer is
// kept: under the peer's URL and a NUL, so that the URL's own value keeps
// the layout older versions read.
func ImportsCursorKey(peer string) []byte { return []byte(peer + "\x00imports") }

// Format 1 (statusengine before this layout), found only in a file Open
// migrates (migrate.go) or salvage reads.
var (
	// LegacyReports kept each report whole: receive time -> the beacon,
	// the zone and the location as text. Migration empties it a chunk per
	// transaction, then deletes it.
	LegacyReports = []byte("reports")
	// legacyRollupVersion was format 1's meta key for its rollups' version.
	legacyRollupVersion = []byte("rollup_version")
	// LegacyDerived are format 1's derived buckets (its own seen, unrolled,
	// rollup and installations), dropped at once when migration starts:
	// format 2 makes its own from the records.
	LegacyDerived = [][]byte{[]byte("seen"), []byte("unrolled"), []byte("rollup"), []byte("installations")}
	// LegacyMeta are format 1's meta keys, dropped with LegacyDerived.
	LegacyMeta = [][]byte{legacyRollupVersion, []byte("installation_next"), []byte("rollup_gen")}
)
