// Package reqinfo holds what the gateway knows about a request before it
// decides anything: where it came from (the client behind the trusted
// proxies, origin.go) and the correlation ID that ties the user's error
// page to the log line with the real reason (correlation.go). Both are set
// once, by the router's second step, and read by every later step.
package reqinfo
