package apitypes

import "fmt"

// MaxRejections bounds the rejected lines an ImportResult names.
const MaxRejections = 10

// ImportResult is the answer of POST /api/v1/import: what was done with the
// records of the request body. Errors and Rejections name the same first
// rejected lines (at most MaxRejections): Errors as the strings "line N:
// why" that clients written before Rejections read, Rejections as objects
// that a client reads without parsing text. A line number counts the body's
// lines from 1. Error says why the import stopped, on an answer other than
// 200 only.
type ImportResult struct {
	Imported   int         `json:"imported"`
	Duplicate  int         `json:"duplicate"`
	Rejected   int         `json:"rejected"`
	Errors     []string    `json:"errors,omitempty"`
	Rejections []Rejection `json:"rejections,omitempty"`
	Error      string      `json:"error,omitempty"`
}

// Rejection is a line of an import that was not stored, and why.
type Rejection struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// Reject names line, rejected for err, in both lists, unless they hold
// MaxRejections already.
func (r *ImportResult) Reject(line int, err error) {
	if len(r.Rejections) >= MaxRejections {
		return
	}
	r.Rejections = append(r.Rejections, Rejection{Line: line, Error: err.Error()})
	r.Errors = append(r.Errors, fmt.Sprintf("line %d: %v", line, err))
}
