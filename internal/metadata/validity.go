package metadata

import (
	"errors"
	"fmt"
	"time"
)

// Why metadata that Inspect accepts is not usable at a given time. The
// errors of UsableAt (and so of Parse) match one of them, and ErrUnusable.
var (
	// ErrExpired: every signing certificate has expired. Someone must act:
	// renew the certificate in Entra and get the new metadata.
	ErrExpired = errors.New("every signing certificate has expired")
	// ErrNotYetValid: no signing certificate is valid yet, but one will
	// be; most often this host's clock is wrong.
	ErrNotYetValid = errors.New("no signing certificate is valid yet")
	// ErrValidUntilPassed: the document's, or its IdP role's, validUntil
	// has passed (saml-metadata §4.3.1: it must not be relied on).
	ErrValidUntilPassed = errors.New("the document's validUntil has passed")
)

// TimeError is why metadata is not usable at a given time. It matches
// ErrUnusable and its Reason with errors.Is.
type TimeError struct {
	// Reason is ErrExpired, ErrNotYetValid or ErrValidUntilPassed.
	Reason error
	// When is the newest certificate's NotAfter (ErrExpired), the earliest
	// NotBefore still to come (ErrNotYetValid), or validUntil.
	When time.Time
	// Now is the time the metadata was checked at.
	Now time.Time
	// LastExpired is, for ErrNotYetValid, the newest NotAfter among
	// certificates that have already expired; zero when there are none.
	LastExpired time.Time
}

// Error says what happened when, with the date and how long ago (or how
// long until), and what to do.
func (e *TimeError) Error() string {
	switch e.Reason {
	case ErrExpired:
		return fmt.Sprintf("%s: no signing certificate is valid now: every one has expired, the newest %s ago on %s; download the metadata again after renewing the certificate in Entra",
			ErrUnusable, days(e.Now.Sub(e.When)), e.When.UTC().Format(time.DateOnly))
	case ErrNotYetValid:
		expired := ""
		if !e.LastExpired.IsZero() {
			expired = fmt.Sprintf(" (the newest expired %s ago on %s)", days(e.Now.Sub(e.LastExpired)), e.LastExpired.UTC().Format(time.DateOnly))
		}
		return fmt.Sprintf("%s: no signing certificate is valid now: the earliest becomes valid in %s on %s%s; check this host's clock",
			ErrUnusable, days(e.When.Sub(e.Now)), e.When.UTC().Format(time.RFC3339), expired)
	default:
		return fmt.Sprintf("%s: expired at %s (validUntil)", ErrUnusable, e.When.UTC().Format(time.RFC3339))
	}
}

// Unwrap makes errors.Is match ErrUnusable and the reason.
func (e *TimeError) Unwrap() []error { return []error{ErrUnusable, e.Reason} }

// days is d in whole days, for people.
func days(d time.Duration) string {
	switch n := int(d / (24 * time.Hour)); n {
	case 0:
		return "less than a day"
	case 1:
		return "1 day"
	default:
		return fmt.Sprintf("%d days", n)
	}
}

// UsableAt checks what changes with time: the document's validUntil has
// not passed and at least one signing certificate is valid at now. Parse
// checks it; a cached document is checked again when it is reused. Its
// error is a *TimeError, or, for an IDP without certificates (which
// Inspect never returns), matches ErrUnusable only.
func (m *IDP) UsableAt(now time.Time) error {
	if !m.ValidUntil.IsZero() && !now.Before(m.ValidUntil) {
		return &TimeError{Reason: ErrValidUntilPassed, When: m.ValidUntil, Now: now}
	}
	if len(m.SigningCerts) == 0 {
		return fmt.Errorf("%w: no signing certificate", ErrUnusable)
	}
	var lastExpired, firstFuture time.Time
	for _, c := range m.SigningCerts {
		switch {
		case now.Before(c.NotBefore):
			if firstFuture.IsZero() || c.NotBefore.Before(firstFuture) {
				firstFuture = c.NotBefore
			}
		case now.After(c.NotAfter):
			if c.NotAfter.After(lastExpired) {
				lastExpired = c.NotAfter
			}
		default:
			return nil
		}
	}
	if !firstFuture.IsZero() {
		// One will become valid by itself: a gap in a rollover, or a
		// clock that is behind.
		return &TimeError{Reason: ErrNotYetValid, When: firstFuture, Now: now, LastExpired: lastExpired}
	}
	return &TimeError{Reason: ErrExpired, When: lastExpired, Now: now}
}

// EarliestExpiry is the earliest NotAfter among the signing certificates
// valid at now: when the IdP's active certificate expires if nobody acts.
// It is zero when none is valid.
func (m *IDP) EarliestExpiry(now time.Time) time.Time {
	var earliest time.Time
	for _, c := range m.SigningCerts {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			continue
		}
		if earliest.IsZero() || c.NotAfter.Before(earliest) {
			earliest = c.NotAfter
		}
	}
	return earliest
}
