// Package docs holds the tests of the project's documentation: every
// relative link in README.md and the Markdown files under docs/ and beside
// the code points at a file that exists.
package docs
