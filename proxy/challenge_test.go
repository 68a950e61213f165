package proxy

import "testing"

func TestCookieChallenge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, login, cookie, want string
	}{
		{"plain", "/auth/api/v1/saml/select?return_to=%2Fx", "__Host-ssogw_session",
			`Cookie realm="sso-gateway", form-action="/auth/api/v1/saml/select?return_to=%2Fx", cookie-name="__Host-ssogw_session"`},
		{"quote and backslash are escaped", `/a"b\c`, `n"\`,
			`Cookie realm="sso-gateway", form-action="/a\"b\\c", cookie-name="n\"\\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := cookieChallenge(tt.login, tt.cookie); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
