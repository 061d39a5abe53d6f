// Package wal is the store's write-ahead log, the file <db>-wal beside the
// database: frames of whole records (Log, its layout and its rules in
// wal.go), the replay of what the database lacks, and the checks that keep
// the store from writing through a link or into a file that is not its own
// (Open, LogRefusedError). The store decides when to log and when to
// commit (store/commit.go); wal only writes, syncs and reads frames.
package wal
