// Package rollup holds the sums the store's reads answer from, so that no
// summary scans raw records:
//
//	period.go       Key and Period: one hour's, day's or month's sums, and
//	                their bbolt value (bucket rollups)
//	bitmapcheck.go  the one-pass check of a stored roaring bitmap
//	live.go         Live: the periods the writer is changing, held in memory
//	                ahead of the bucket until a flush
//	dims.go         the dimensions a report counts in (version, platform,
//	                server, libraries, country, map point), and the keys of a
//	                custom schema's zone's countries and points (ZoneGeoKey)
//
// The store's writer turns each stored record into a Fact and applies it to
// Live; its reads (store/totals.go, series.go, installs.go) take a period
// from Live when it is held, else from the bucket.
package rollup
