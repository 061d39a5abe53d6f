// Package container tests the container image of dist/Containerfile: built
// offline from the static binaries with Debian's podman, run as a non-root
// user with only CAP_NET_BIND_SERVICE in a private network namespace,
// answering and storing a report on port 53, its database on a volume. See
// ../README.md.
//
// This file exists so that the package has a non-test file; the test code is
// in the *_test.go files.
package container
