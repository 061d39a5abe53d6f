// Package browser holds the status page's browser test: a real CoreDNS with
// the statusengine plugin, filled with generated reports from many countries,
// and the page loaded from its side listener in headless Chromium.
package browser
