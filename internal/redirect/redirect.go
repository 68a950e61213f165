// Package redirect decides whether a redirect target taken from an untrusted
// source (a RelayState, a return_to parameter, a remembered deep link) stays
// on the gateway's own origin.
//
// Browsers are generous in what they treat as a path separator or a scheme:
// "//evil.example", "/\evil.example", "/\t/evil.example" and
// "javascript:alert(1)" all leave the site. Rather than trying to clean such
// input, Local accepts only a conservative subset of same-origin paths and
// the caller falls back to a configured default for everything else.
package redirect

import "net/url"

// MaxLength is the longest target Local accepts. A deep link longer than
// this is unusual, and the target travels in cookies and RelayState, both
// of which are size-limited.
const MaxLength = 2048

// maxDecodeRounds bounds how many layers of percent-encoding Local peels off
// while looking for a hidden "//" or "\". Three is more than any browser or
// server decodes.
const maxDecodeRounds = 3

// Local reports whether target is a same-origin absolute path (with an
// optional query and fragment) that is safe to send in a Location header.
// It returns target unchanged when it is, so that the path reaches the
// upstream exactly as the user first requested it.
func Local(target string) (string, bool) {
	if target == "" || len(target) > MaxLength {
		return "", false
	}
	if !safeChars(target) {
		return "", false
	}
	// Every layer of percent-decoding must still look like a local path:
	// some servers and frameworks decode a Location before following it.
	// Target that is still encoded after maxDecodeRounds layers is refused.
	s := target
	for round := 0; ; round++ {
		if !localShape(s) {
			return "", false
		}
		decoded, err := url.PathUnescape(s)
		if err != nil {
			return "", false
		}
		if decoded == s {
			break
		}
		if round == maxDecodeRounds || !safeDecoded(decoded) {
			return "", false
		}
		s = decoded
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return "", false
	}
	return target, true
}

// localShape reports whether s starts like a path on this origin: one slash
// that is not followed by another slash or a backslash.
func localShape(s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	return true
}

// safeDecoded reports whether a percent-decoded form of a target is free of
// the characters browsers strip or reinterpret. Spaces and non-ASCII bytes
// are fine once decoded: they were encoded in the target itself.
func safeDecoded(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// safeChars reports whether s is printable ASCII without backslashes or
// spaces. Browsers strip tabs and newlines from URLs and turn backslashes
// into slashes, and full-width forms may be normalised into ASCII ones, so
// anything outside this set is refused rather than interpreted.
func safeChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
