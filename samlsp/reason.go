package samlsp

import (
	"errors"
	"net/http"

	crewsaml "github.com/crewjam/saml"

	"github.com/sso-gateway/sso-gateway/internal/page"
)

// Failure reasons: the values of the reason label of
// sso_gateway_logins_total. The set is fixed so the label stays small.
const (
	ReasonSignature            = "signature"
	ReasonAudience             = "audience"
	ReasonDestination          = "destination"
	ReasonExpired              = "expired"
	ReasonReplay               = "replay"
	ReasonInResponseTo         = "in_response_to"
	ReasonIDPInitiatedDisabled = "idp_initiated_disabled"
	ReasonGroupDenied          = "group_denied"
	ReasonGroupOverage         = "group_overage"
	ReasonMalformed            = "malformed"
	ReasonIssuer               = "issuer"
	ReasonIDPStatus            = "idp_status"
	ReasonEntraTenant          = "entra_tenant"
	ReasonReplayStore          = "replay_store_unavailable"
	ReasonOther                = "other"
)

// Reasons returns every failure reason, for documentation and tests: a
// new slice on each call, so that no caller can change another's.
func Reasons() []string {
	return []string{
		ReasonSignature, ReasonAudience, ReasonDestination, ReasonExpired, ReasonReplay,
		ReasonInResponseTo, ReasonIDPInitiatedDisabled, ReasonGroupDenied, ReasonGroupOverage, ReasonMalformed,
		ReasonIssuer, ReasonIDPStatus, ReasonEntraTenant, ReasonReplayStore, ReasonOther,
	}
}

// errIDPInitiatedDisabled is returned by the request ID hook for an
// unsolicited response at a tenant that does not accept them.
var errIDPInitiatedDisabled = errors.New("unsolicited (IdP-initiated) response, and the tenant does not allow IdP-initiated login")

// errReplayStore wraps a failure of the replay store to record an
// assertion ID.
var errReplayStore = errors.New("replay store unavailable")

// errUntracked is returned by the request ID hook for an InResponseTo that
// names no request tracked in this browser for this tenant.
var errUntracked = errors.New("InResponseTo names no request tracked for this tenant in this browser")

// loginError is a failed login: the reason for the metric and log, the
// page for the user and the cause for the log.
type loginError struct {
	reason string
	page   *page.Error
}

// classify maps a validation error to a reason and a user-facing page. The
// order matters: crewjam attaches several sentinels to one error (an SHA-1
// signature is both ErrUnsupported and ErrInvalidSignature), and the most
// specific reason wins.
func classify(err error) loginError {
	var bad crewsaml.ErrBadStatus
	switch {
	case errors.Is(err, errReplayStore):
		return failure(ReasonReplayStore, http.StatusServiceUnavailable, "Signing in is briefly unavailable. Please try again in a moment.", err)
	case errors.Is(err, crewsaml.ErrAssertionReplayed):
		return failure(ReasonReplay, http.StatusForbidden, "This sign-in response has already been used. Please sign in again.", err)
	case errors.Is(err, errIDPInitiatedDisabled):
		return failure(ReasonIDPInitiatedDisabled, http.StatusForbidden, "Signing in from the Microsoft My Apps portal is not enabled for your organisation. Please start from this site instead.", err)
	case errors.Is(err, crewsaml.ErrRequestIDMismatch), errors.Is(err, errUntracked):
		return failure(ReasonInResponseTo, http.StatusForbidden, "This sign-in was started in another browser or window, or took too long. Please sign in again.", err)
	case errors.Is(err, crewsaml.ErrInvalidSignature), errors.Is(err, crewsaml.ErrUntrustedCertificate),
		errors.Is(err, crewsaml.ErrCertificateNotValidNow), errors.Is(err, crewsaml.ErrDecryptionFailed), unsigned(err):
		return failure(ReasonSignature, http.StatusForbidden, "The sign-in response from your organisation could not be verified.", err)
	case errors.Is(err, crewsaml.ErrAudienceMismatch):
		return failure(ReasonAudience, http.StatusForbidden, "The sign-in response was issued for a different application.", err)
	case errors.Is(err, crewsaml.ErrDestinationMismatch):
		return failure(ReasonDestination, http.StatusForbidden, "The sign-in response was sent to the wrong address.", err)
	case errors.Is(err, crewsaml.ErrExpired), errors.Is(err, crewsaml.ErrNotYetValid):
		return failure(ReasonExpired, http.StatusForbidden, "The sign-in response has expired or is not valid yet. Please sign in again; if this keeps happening, check your computer's clock.", err)
	case errors.Is(err, crewsaml.ErrIssuerMismatch):
		return failure(ReasonIssuer, http.StatusForbidden, "The sign-in response came from an identity provider this organisation does not use.", err)
	case errors.As(err, &bad):
		return failure(ReasonIDPStatus, http.StatusForbidden, "Your organisation's sign-in service did not sign you in.", err)
	case errors.Is(err, crewsaml.ErrMalformedMessage), errors.Is(err, crewsaml.ErrMissingElement), errors.Is(err, crewsaml.ErrUnsupported):
		return failure(ReasonMalformed, http.StatusBadRequest, "The sign-in response could not be read.", err)
	}
	return failure(ReasonOther, http.StatusForbidden, "The sign-in response was not accepted.", err)
}

// unsigned reports whether crewjam refused a response because neither it
// nor its assertion carries a signature. crewjam reports that with an
// unexported, unclassified error, so its message is the only handle; the
// response is refused either way, this only picks the metric label.
func unsigned(err error) bool {
	var ire *crewsaml.InvalidResponseError
	return errors.As(err, &ire) && ire.PrivateErr != nil && ire.PrivateErr.Error() == "signature element not present"
}

func failure(reason string, code int, msg string, err error) loginError {
	return loginError{reason: reason, page: page.Errorf(code, msg, err)}
}
