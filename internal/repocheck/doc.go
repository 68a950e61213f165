// Package doccheck keeps the repository's documents honest: its test reads
// every Markdown file outside testdata and checks that each relative link
// names a file or folder that exists and that each #anchor names a heading
// of its target, as GitHub renders it. It also checks the absolute links
// into this repository on GitHub (such as an alert's runbook_url), in any
// file, against the tree they point into.
//
// The package holds no code besides its test: it is a test of the
// documents, not a library.
package repocheck
