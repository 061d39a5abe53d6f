// Package store keeps status reports in one bbolt file.
//
// A DNS question becomes a record in Submit (submit.go): the report is
// queued for the writer goroutine (loop.go), which applies every report
// queued at that moment to its open transaction (writer.go, apply) and
// answers each once the batch is on disk, or after Options.AnswerWait. On
// disk means committed, when reports come slowly; while they come fast,
// the stored records are appended to the write-ahead log (wal.go, one
// fdatasync) and the transaction, held open across batches, commits every
// 100 ms.
//
// What the file holds (bucket: key -> value), and how each is rebuilt:
//
//	records        receive time (unix ns, 8 bytes) -> epoch, resolver, ECS and      raw: the reports
//	               numbers into zones, places, installations (encode.go)
//	zones          number -> zone name                                              raw (dictionary)
//	places         number -> location (country, names, point, source)              raw (dictionary)
//	builds         number -> beacon head: every field but the id                   raw (dictionary)
//	installations  number -> build, source network, id (the installation estimate) raw (dictionary)
//	resolvers      installation number -> the /24 or /48 of the resolver of its    raw, written with the row
//	               first report, for the public floor (absent: the source network)  (files before it: absent)
//	index          dictionary tag + SHA-256 prefix of a value -> its number         from the dictionaries' rows
//	seen           client epoch + SHA-256 prefix of the beacon -> nothing           from records (seen.go)
//	rollups        period (hour, day, month) -> installations bitmap, reports per  from records (period.go),
//	               build, per country and per map point                             but retention's deleted ones
//	snapshots      day -> the public daily document the API rendered, kept as      as written
//	               written (never changed, never deleted)
//	peers          peer URL -> cursor (its last record key taken), time of the     as written
//	               last pull that reached its newest record (replication)
//	meta           format, count, rolled (rollups hold records up to this key),    as written
//	               indexed.<dictionary> (rows up to this number are in index),
//	               rebuilding (a rollup rebuild is under way), wal (the log's
//	               frames up to this seq are in the file)
//
// Beside it, the file <db>-wal (wal.go):
//
//	frames         seq -> a whole record with its key, for the records answered  Open applies the frames
//	               since the last commit; the frames from offset 0 whose seqs    after meta "wal", 4096 a
//	               follow one another, a torn or older frame ends them           transaction; removed on
//	                                                                             a clean Close
//
// What the process holds:
//
//	writer.held (loop.go)   the write transaction open across batches, and   begun again; a failed
//	                        the records it holds, logged                      commit's are in the log
//	live (live.go)          the rollup periods being changed, in full; ahead  Open: the bucket, then
//	                        of the bucket by the records after "rolled"       the records after "rolled"
//	dict.recent (dict.go)   dictionary rows after indexed.<dictionary>:       Open: those rows
//	                        hash -> number, at most about half a million
//	dict.hot                the numbers looked up last, bounded               empty
//	recentSeen (seen.go)    fingerprints of the seen keys committed last,     empty
//	                        so Submit answers most duplicates itself (2 MiB)
//	readCaches (read.go)    parsed zones, places, builds, installations;      empty
//	                        readCaches.closed (totals.go): sums of past
//	                        days, a flight.Cache by range and generation;
//	                        readCaches.steps (installs.go): closed steps
//	sourceLimiter           token buckets per source network (policy.go)      empty
//
// The log's path is opened only as a file the store may write (wal.go,
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
// replayChunk, each setting meta "wal" to its last frame: a bbolt
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
