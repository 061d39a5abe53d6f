// Package reliability proves, against the real CoreDNS build run as a
// process, that the collector keeps answering, keeps its data and lets no
// one poison it or read what is not public: hostile names and packets,
// floods from one resolver, kill -9 under load, a full disk, reloads, the
// API's limits and the privacy options. See ../README.md.
//
// This file exists so that the package has a non-test file; the tests are
// in the *_test.go files.
package reliability
