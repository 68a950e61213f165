//go:build !race

// Package race tells whether the race detector is on: under it sync.Pool
// drops a share of what is put back on purpose, and allocation budgets
// that count on a pool must allow for it.
package race

// Enabled is true in a binary built with -race.
const Enabled = false
