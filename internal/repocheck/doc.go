// Package repocheck holds the tests of the repository itself.
//
// The links test keeps the documents honest: it reads
// every Markdown file outside testdata and checks that each relative link
// names a file or folder that exists and that each #anchor names a heading
// of its target, as GitHub renders it. It also checks the absolute links
// into this repository on GitHub (such as an alert's runbook_url), in any
// file, against the tree they point into.
//
// The imports test keeps the import rules that ARCHITECTURE.md names
// true, from what go list says of the product's packages.
//
// The package holds no code besides its tests: it is a test of the
// repository, not a library.
package repocheck
