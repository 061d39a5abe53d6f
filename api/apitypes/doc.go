// Package apitypes declares, once, the shapes of the API's answers that
// other programs of this module read back: the pages of records a peer pulls
// (GET /api/v1/reports, GET /api/v1/imports) and the answer of an import
// (POST /api/v1/import), which statusengine import --api reads.
//
// The API writes these types, the replication puller
// (plugin/statusengine/peers.go) and the operator command
// (build/statusengine) read them. They live in a package of their own, not in
// api, so that a reader does not import the server: importing api would link
// its handlers into the command and register its metrics. They are not in
// store either: they are answers of the HTTP API, not stored forms; a record
// in them is the store's one interchange form, record.Wire.
//
// A page of records may be written or read a row at a time (the API streams
// the reports page; the puller decodes each record as it comes, through a
// cap): ReportsPageHead, ReportsPageTail and DecodePage do that with the
// names of the types, so the shape stays declared in one place.
package apitypes
