// Package cluster holds integration tests of several real sso-gateway
// processes working together, the way they run in production: three
// replicas built from ./cmd/sso-gateway, each with its own config file, behind
// a small round-robin load balancer that health-checks /readyz, sharing a
// real redis-server for replay protection, in front of a switchable upstream
// and a switchable IdP metadata server.
//
// The tests prove what a single process cannot: that a session made by one
// replica is valid on the others, that a SAML response is accepted only once
// across replicas, that session keys can be rotated one replica at a time
// without logging anyone out (and that the one-phase rotation cannot), that
// a replica told to stop finishes its downloads while the others take new
// requests, that a rolling restart loses no request, and that each fault
// (upstream down or slow, IdP metadata URL down, Redis down, a broken config
// pushed by reload) has its documented effect and clears by itself.
//
// Everything listens on 127.0.0.1 only. There is no non-test code: the
// package exists for its tests, which need redis-server in PATH and build the
// gateway binary once with the go command in PATH.
package cluster
