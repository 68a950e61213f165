// Package e2e holds the gateway's end-to-end tests in a real browser.
//
// The other packages test the gateway with net/http clients, which do not
// apply the rules a browser does: SameSite cookie policy on the IdP's
// cross-site POST to the ACS, the __Host- and __Secure- cookie prefixes,
// Sec-Fetch-* headers, redirects after a POST, and form auto-submission by
// script. A mistake in any of those passes every unit test and still locks
// every user out. So this package drives headless Chromium through the
// whole product, wired as in production: the gateway and the demo IdP on
// two different sites over HTTPS (certificates from a CA made by the test),
// the demo document service as the upstream.
//
// The tests need Chromium: /usr/bin/chromium (Debian package chromium), or
// the path in the environment variable CHROMIUM. Without it they fail
// rather than skip, because CI installs it and a silent skip would hide a
// broken login. They only listen on and connect to 127.0.0.1; the browser
// maps the test's host names to it.
//
// Run with -artifacts to keep the screenshot taken when a flow fails.
//
// The package has no non-test code; this file only documents it.
package e2e
