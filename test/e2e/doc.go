// Package e2e holds the end-to-end tests of statusengine.
//
// TestRealModSecurity drives a REAL ModSecurity 2.x client (Apache with
// libapache2-mod-security2 and "SecStatusEngine On") against the statusengine
// CoreDNS build, inside a private network namespace: with the glibc stub
// resolver talking to our server directly, and through real resolvers
// (Unbound, also with a primed stub, BIND 9 with relaxed and strict QNAME
// minimisation, Knot Resolver, PowerDNS Recursor, dnsmasq in front of
// Unbound). It checks, through the JSON API, that every Apache cold start is
// stored exactly once and that the stored fields equal the beacon Apache
// logged. See ../README.md for requirements.
//
// This file exists so that the package has a non-test file; the test code is
// in the *_test.go files.
package e2e
