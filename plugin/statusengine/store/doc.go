// Package store keeps status reports in one bbolt file.
//
// It is built in layers, each a package that imports only those below it,
// so the compiler holds the walls:
//
//	store                the writer goroutine and what it offers: Open, Submit,
//	                     SubmitBatch, the reads (totals.go, series.go,
//	                     installs.go, snapshots.go), import (importer.go),
//	                     backup, peers' cursors, Check, salvage and format 1
//	                     migration; the dictionaries (dict.go) and the
//	                     durable commit (commit.go)
//	  store/rollup       the sums reads answer from: Period per hour, day and
//	                     month and its bbolt value, Live (periods held in
//	                     memory), the dimensions a report counts in
//	  store/wal          the write-ahead log <db>-wal: frames, replay, and the
//	                     rule that refuses a log file that is not the store's
//	  store/record       Record and Validate; Wire, the one interchange form
//	                     (NDJSON, and CSV from it); the installation estimate;
//	                     the bbolt values of a record and of dictionary rows
//	  store/schema       the name of every bucket and meta key
//	  store/internal/bin the byte primitives of the binary forms
//	  store/boltfile     the file's pages checked before bbolt maps them
//
// rollup and wal both read and write records, so both stand on record;
// none of them knows the writer, and only store opens the bolt.DB.
//
// A DNS question becomes a record in Submit (submit.go): the report is
// queued for the writer goroutine (loop.go), which applies every report
// queued at that moment to its open transaction and answers each once the
// batch is on disk (commit.go: one durable commit, top to bottom, from
// commit through apply to done), or after the answer wait. On
// disk means committed, when reports come slowly; while they come fast,
// the stored records are appended to the write-ahead log (wal/wal.go, one
// fdatasync) and the transaction, held open across batches, commits every
// 100 ms.
//
// What the file holds (bucket: key -> value; schema/schema.go names each
// bucket and key), and how each is rebuilt:
//
//	records        receive time (unix ns, 8 bytes) -> epoch, resolver, ECS and      raw: the reports
//	               numbers into zones, places, installations
//	               (record/encode.go)
//	zones          number -> zone name                                              raw (dictionary)
//	places         number -> location (country, names, point, source)              raw (dictionary)
//	builds         number -> beacon head: every field but the id; of a zone of a   raw (dictionary)
//	               custom schema, the zone, NUL, the head (that schema's SplitID)
//	installations  number -> build, source network, id (the installation estimate) raw (dictionary)
//	resolvers      installation number -> the /24 or /48 of the resolver of its    raw, written with the row
//	               first report, for the public floor (absent: the source network)  (files before it: absent)
//	index          dictionary tag + SHA-256 prefix of a value -> its number         from the dictionaries' rows
//	seen           client epoch + SHA-256 prefix of the beacon -> nothing           from records (seen.go)
//	rollups        period (hour, day, month) -> installations bitmap, reports per  from records
//	               build, per country and per map point; a custom schema's         (rollup/period.go), but
//	               countries and points under NUL and the zone's number             retention's deleted ones
//	               (rollup.ZoneGeoKey)
//	snapshots      day -> the public daily document the API rendered, kept as      as written
//	               written (never changed, never deleted); day and zone name ->
//	               a custom schema's zone's
//	peers          peer URL -> cursor (its last record key taken), time of the     as written
//	               last pull that reached its newest record (replication, peers.go);
//	               peer URL, NUL, "imports" -> its cursor in the peer's imports
//	imports        sequence (the bucket's NextSequence) -> key of a record an       as written (files before
//	               import stored, for peers (imports.go); retention deletes the     it: absent, none listed)
//	               entries of the records it deletes (retention.go)
//	outbox         sequence -> keys of the records one transaction stored of this  as written (made by
//	               server's own (at most 1024; a key acknowledged by the JetStream  EnableOutbox only)
//	               stream is zeroed, a row of zeros deleted: outbox.go)
//	schemas        zone name -> its custom schema's spec as JSON                   as written (files before
//	               (record.AppendSchema); no row: ModSecurity's (schemas.go)       it: absent, none custom)
//	meta           one value per key, 8 bytes:
//	  format       the layout: 2, or 1 while a format 1 file is migrated           as written (format 1: absent)
//	  count        the records in bucket records                                    as written
//	  rolled       rollups hold the records up to this key (rollup/live.go)        as written
//	  indexed.zones, indexed.places, indexed.builds, indexed.installations
//	               index holds the dictionary's rows up to this number (dict.go)   as written
//	  rebuilding   present while a rollup rebuild is under way (replay.go)          Open starts the rebuild over
//	  wal          the log's frames up to this seq are in the file (wal/wal.go)    as written
//
// Schemas (schemas.go). A zone of a custom schema (docs/schemas.md) has its
// reports stored as ModSecurity's are, once each: a record whose report is
// of codec.FormatSchema (the beacon, its id field, the epoch), its build
// the head under the zone (zone, NUL, head: ModSecurity's heads are
// printable ASCII, so an existing file's rows, records, installations and
// rollups are unchanged and read as before). Its fields are not stored
// apart: readers parse a build's head with the zone's schema at read time
// (ZoneTotals), and a build's row says its zone, so ModSecurity's totals,
// series and installation steps leave other zones' builds out. The one
// addition to the rollups' keys: a custom zone's reports count in a
// period's countries and points under a NUL and the zone's number
// (rollup.ZoneGeoKey), since a country's sum cannot be split by zone at
// read time; ModSecurity's keys are printable, so they are as before.
// The schema itself is in the file (bucket schemas), written by SetSchema
// before the zone's first report and read at Open before the write-ahead
// log, so that the log's frames, Check, salvage and export read custom
// beacons without a Corefile. record.Schemas is the one lookup (zone ->
// schema) every reader and writer of a beacon goes through; the store holds
// it in an atomic pointer, swapped whole by SetSchema, so a reload never
// races a reader. SetSchema refuses a change that is not codec.Schema.Extends
// (fields added at the end, same roles), and a switch between ModSecurity's
// schema and a custom one for a zone that holds reports, with an error
// naming the zone: stored reports keep the meaning they were stored with,
// and the Corefile's start or reload fails rather than silently re-reading
// them (a refused reload leaves the running instance serving).
//
// A format 1 file (statusengine before this layout) is migrated in place at
// Open (migrate.go), and read by salvage:
//
//	reports        receive time -> the report whole, its beacon, zone and           moved to records, a chunk a
//	               location as text                                                 transaction, then deleted
//	seen, unrolled, rollup, installations
//	               format 1's derived buckets                                       deleted as migration starts
//	meta           format 1's values:
//	  rollup_version, installation_next, rollup_gen
//	               its rollups' version and counters                                deleted as migration starts
//
// Beside it, the file <db>-wal (wal/wal.go):
//
//	frames         seq -> a whole record with its key, for the records answered  Open applies the frames
//	               since the last commit; the frames from offset 0 whose seqs    after meta "wal", 4096 a
//	               follow one another, a torn or older frame ends them           transaction; removed on
//	                                                                             a clean Close
//
// What the process holds (type.field, in the file that declares it), and
// how Open rebuilds it:
//
//	writer.held (writer.go)          the write transaction open across batches     begun again; a failed
//	  and writer.logged              (commit, commit.go), and the records it logged commit's are in the log
//	writer.log (writer.go)           the write-ahead log open for writing: where   Open: the file and meta
//	                                 the next frame goes, its seq, meta "wal"      "wal", replayed
//	                                 nil when the log is refused (below): each     refused again at each Open
//	                                 batch then commits before its answer          until the path is fixed
//	writer.logBlocked (writer.go)    logging stopped after a commit failed for     false
//	                                 lack of space, until one works
//	writer.lastKey (writer.go)       the highest record key stored                  Open: records' last key
//	writer.nextFree (writer.go)      time -> the key after the run of keys taken   empty
//	                                 there (freeKey), at most 4096
//	writer.rebuild (writer.go)       a rollup rebuild under way (replay.go): the   Open: meta "rebuilding"
//	  and writer.rebuildNeeded       keys left to count, why; or why one must      starts it over
//	                                 start
//	writer.limiter (writer.go)       token buckets per source network              empty
//	                                 (sourceLimiter, policy.go)
//	writer.importsSwept (writer.go)  where retention's walk of bucket imports      0: the walk starts over
//	                                 goes on (pruneImports, retention.go)
//	dict.next, dict.indexed          a dictionary's next number and watermark      Open: the rows' last key,
//	  (dict.go)                      indexed.<dictionary>                          meta indexed.<dictionary>
//	dict.recent (dict.go)            rows after indexed.<dictionary>:               Open: those rows
//	                                 hash -> number, at most about half a million
//	dict.flushing, dict.flushed      the part of recent being written to the       empty: a later round
//	  (dict.go)                      index, sorted, and how much of it is written  starts over
//	dict.hot (dict.go)               the numbers looked up last, bounded           empty
//	Store.live (store.go)            the rollup periods being changed, in full;    Open: the bucket, then
//	                                 ahead of the bucket by the records after      the records after
//	                                 "rolled" (rollup.Live)                        "rolled"
//	Store.seenCache (store.go)       fingerprints of the seen keys committed last, empty
//	                                 so Submit answers most duplicates itself
//	                                 (recentSeen, seen.go, 2 MiB)
//	Store.readers (store.go)         readCaches (read.go): zones, places, builds,  empty
//	                                 installs: dictionary rows parsed, each map
//	                                 emptied past maxMemo
//	readCaches.closed (read.go)      sums of past days, a flight.Cache by range    empty
//	                                 and generation (closedCache, totals.go)
//	readCaches.steps (read.go)       InstallSteps of closed steps, by            empty
//	                                 generation (stepCache, installs.go)
//	readCaches.table                 every installation row's build and hashes of  Open: one pass of bucket
//	  (installtable.go)              its network and id, by number, 24 bytes a     installations; extended
//	                                 row, at most 4 Mi rows (96 MiB); the numbers  by readers with the rows
//	                                 past it are read from the bucket              committed since
//	zonesOK (record/record.go)       zones found valid, at most 64; one for the    empty
//	                                 process, not per store
//	Store.count, Store.installs      records stored, installations numbered        Open: meta "count" (or
//	  (store.go)                                                                   counted), the last row
//	Store.own (store.go)             own records (not a peer's or the stream's)    0
//	                                 committed since Open (OwnStored: the feed's
//	                                 measure of a busy DNS path)
//	Store.outboxLen (store.go)       entries waiting in the outbox (OutboxLen),    Open: one pass of bucket
//	                                 kept at each commit and OutboxDone            outbox
//	Store.down, Store.downCh,        down: why the store stopped for good (a       up; a damaged file fails
//	  Store.file (store.go)          damaged file found while running), closed     Open or Check
//	                                 once; bbolt's descriptor, see closeDown
//	Store.noSpaceUntil,              out of room: reports fail at once until       zero
//	  Store.noSpaceErr (store.go)    then (space.go)
//	Store.policy (store.go)          the limits and retention (policy.go)          none until Configure
//	Store.schemas (store.go)         the zones' custom schemas (record.Schemas),   Open: bucket schemas,
//	                                 swapped whole by SetSchema                    before the log
//	Store.custom (store.go)          installations of custom schemas' zones, all   empty: read again on
//	                                 and by zone, read from their rows up to a     first use
//	                                 number (customSet, schemas.go)
//
// The log's path is opened only as a file the store may write (wal/wal.go,
// openLogFile and ours): never through a symbolic link (O_NOFOLLOW; a link
// to the database had the log written over it), never a FIFO, device or
// directory, never the database file itself (same device and inode), and,
// when it exists, only if it is ours: one link, the database file's owner,
// no write permission for group or others, and empty or starting with a
// frame header (or zeros, as a crash can leave). Any other file is refused
// with a *LogRefusedError in one warning (Options.OnWarning), named by
// Check, and never written or removed; the store then commits each batch
// before its answer. When it can be read safely (a regular file of its
// own, not the database) the frames it holds past meta "wal" are read
// read-only and stored, with a warning naming their count.
//
// The frames the database lacks are applied in transactions of at most
// wal.ReplayChunk, each setting meta "wal" to its last frame: a bbolt
// transaction holds every page and node it changes until its commit, and a
// 32 MiB log applied at once peaked at 402 MB (45 transactions: 206 MB).
//
// The file is checked page by page before bbolt maps it (boltfile), and a
// panic or memory fault inside bbolt takes the store down, never the
// process: a damaged file is never written, and `statusengine salvage`
// copies what is readable. Once down, the store never enters that bolt.DB
// again (goDown): a panic can leave bbolt's writer lock or meta lock held,
// and a Begin or Close would then wait for good. Reads answer the
// *DamagedError at once (a read already waiting in Begin returns when the
// store goes down), Submit, SubmitBatch and Sync fail, the held
// transaction is dropped without a rollback (its logged frames stay in the
// log, for salvage), and Close gives bbolt's Close one second, then
// releases the file's flock and closes its descriptor itself, so that a
// reload, a restart or salvage can lock the file.
package store
