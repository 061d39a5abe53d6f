// Package record holds a stored report and every form it takes:
//
//	record.go        Record, and Validate: what any record must obey before it
//	                 is stored (live reports, imports and replicated records)
//	wire.go          Wire, the one interchange form: the NDJSON line of export
//	                 (API and CLI), import, the API's rows and replication;
//	                 ParseLine reads it (and version 1's export lines)
//	wireform.go      the NDJSON and CSV writers; CSV's header and row come from
//	                 one column table over Wire
//	installation.go  the installation estimate and the resolver's network
//	encode.go        the bbolt values: a record (its strings as numbers into
//	                 the dictionaries), an installation row, a place row
//	schemas.go       Schemas, the zones' custom schemas: the one lookup every
//	                 reader and writer of a beacon goes through (Validate,
//	                 Wire.Record, the log's frames); a schema's bbolt value
//
// A record has two storage forms beside Wire: its bbolt value here, and its
// log frame (package wal). They differ because they answer different
// questions: the bbolt value holds numbers into dictionaries that only the
// committed file has, while a log frame must stand alone (the dictionaries'
// new rows of a logged batch are in the same uncommitted transaction).
package record
