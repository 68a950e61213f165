package config

// The checks of tenants: each customer's IdP, policy and headers. A problem here makes only that tenant not ready.

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/sso-gateway/sso-gateway/internal/redirect"
)

// tenantIDPattern keeps Customer_IDs to RFC 3986 unreserved characters, so
// that an ID is the same string in a URL path, a cookie and a metric label.
var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$`)

// guidPattern is a lower case GUID, the form of an Entra directory ID.
var guidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// nameIDFormats maps the short names operators may write to the URIs.
var nameIDFormats = map[string]string{
	"email":       DefaultNameIDFormat,
	"unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
	"persistent":  "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
	"transient":   "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
}

func (v *validator) tenants(path string, fs []tenantFile) []Tenant {
	if len(fs) == 0 {
		v.add(path, "at least one tenant is required")
	}
	seenID := map[string]string{}
	seenDomain := map[string]string{}
	seenHost := map[string]string{}
	publicHost := v.publicHost
	var out []Tenant
	for i, f := range fs {
		p := fmt.Sprintf("%s[%d]", path, i)
		t := Tenant{
			ID:                f.ID,
			EntraTenantID:     strings.ToLower(strings.TrimSpace(f.EntraTenantID)),
			AllowIDPInitiated: f.AllowIDPInitiated == nil || *f.AllowIDPInitiated,
			AllowSHA1:         f.AllowSHA1 != nil && *f.AllowSHA1,
			DefaultRelayState: f.DefaultRelayState,
			NameIDFormat:      f.NameIDFormat,
		}
		switch {
		case f.ID == "":
			v.add(p+".id", "is required")
		case !tenantIDPattern.MatchString(f.ID) || strings.Trim(f.ID, ".") == "":
			v.add(p+".id", "%q is not URL-safe: use 1 to 64 letters, digits, '-', '_', '.' or '~', starting with a letter or digit", f.ID)
		default:
			if prev, dup := seenID[strings.ToLower(f.ID)]; dup {
				v.add(p+".id", "%q duplicates %s", f.ID, prev)
			}
			seenID[strings.ToLower(f.ID)] = p + ".id"
		}

		if t.EntraTenantID != "" && !guidPattern.MatchString(t.EntraTenantID) {
			v.add(p+".entra_tenant_id", "%q is not a directory (tenant) ID like 72f988bf-86f1-41af-91ab-2d7cd011db47: find it in Entra ID under Overview", f.EntraTenantID)
		}

		switch {
		case f.IDPMetadataFile != "" && f.IDPMetadataURL != "":
			v.add(p, "set only one of idp_metadata_file and idp_metadata_url")
		case f.IDPMetadataFile != "":
			// Read by the gateway, where a problem with it is the
			// tenant's alone.
			t.MetadataFile = v.path(f.IDPMetadataFile)
		case f.IDPMetadataURL != "":
			t.MetadataURL = v.metadataURL(p+".idp_metadata_url", f.IDPMetadataURL)
		default:
			v.add(p, "one of idp_metadata_file and idp_metadata_url is required")
		}
		t.MetadataRefresh = v.duration(p+".idp_metadata_refresh_interval", f.IDPMetadataRefresh, DefaultMetadataRefresh)
		if t.MetadataRefresh < MinMetadataRefresh {
			v.add(p+".idp_metadata_refresh_interval", "must be at least %s (got %s)", MinMetadataRefresh, t.MetadataRefresh)
		}
		if f.IDPMetadataRefresh != "" && f.IDPMetadataURL == "" {
			v.add(p+".idp_metadata_refresh_interval", "applies only to idp_metadata_url; a file is read again when the config is reloaded")
		}
		if f.IDPMetadataSigner != "" {
			// The customer's certificate: a problem with it stops only
			// this tenant, which must then not trust unsigned metadata.
			v.forTenant(&t, func() {
				t.MetadataSigners = v.certificates(p+".idp_metadata_signing_cert", f.IDPMetadataSigner)
			})
		}

		for j, h := range f.Hosts {
			hp := fmt.Sprintf("%s.hosts[%d]", p, j)
			h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
			switch {
			case !validHostname(h) || !strings.Contains(h, "."):
				v.add(hp, "%q is not a host name (no scheme, port or path)", f.Hosts[j])
			case h == publicHost:
				v.add(hp, "%q is public_url's host, which serves every tenant", h)
			case seenHost[h] != "":
				v.add(hp, "%q is already %s: a host must lead to one tenant", h, seenHost[h])
			default:
				seenHost[h] = hp
				t.Hosts = append(t.Hosts, h)
			}
		}
		if f.SAMLURLsOnHost != nil && *f.SAMLURLsOnHost {
			if len(f.Hosts) == 0 {
				v.add(p+".saml_urls_on_host", "needs hosts: the Identifier, Reply URL and Logout URL move to the first of them")
			}
			t.SAMLURLsOnHost = true
		}
		for j, d := range f.EmailDomains {
			dp := fmt.Sprintf("%s.email_domains[%d]", p, j)
			d = strings.ToLower(strings.TrimSpace(d))
			if !validHostname(d) || !strings.Contains(d, ".") {
				v.add(dp, "%q is not a domain name", f.EmailDomains[j])
				continue
			}
			if prev, dup := seenDomain[d]; dup {
				v.add(dp, "%q is already mapped by %s: a domain must lead to one tenant", d, prev)
				continue
			}
			seenDomain[d] = dp
			t.EmailDomains = append(t.EmailDomains, d)
		}
		for j, g := range f.AllowedGroups {
			if strings.TrimSpace(g) == "" {
				v.add(fmt.Sprintf("%s.allowed_groups[%d]", p, j), "must not be empty")
				continue
			}
			t.AllowedGroups = append(t.AllowedGroups, g)
		}

		seenAttr := map[string]bool{}
		for j, a := range f.SessionAttributes {
			ap := fmt.Sprintf("%s.session_attributes[%d]", p, j)
			switch {
			case a != "email" && a != "name" && a != "groups":
				v.add(ap, "%q is not one of email, name, groups", a)
			case seenAttr[a]:
				v.add(ap, "%q is listed twice", a)
			default:
				seenAttr[a] = true
				t.SessionAttributes = append(t.SessionAttributes, a)
			}
		}
		if f.SessionAttributes != nil && t.SessionAttributes == nil {
			t.SessionAttributes = []string{} // keep none of them
		}
		for name, claim := range f.Headers {
			hp := p + ".headers." + name
			canon := http.CanonicalHeaderKey(name)
			switch {
			case !validHeaderName(name) || !strings.HasPrefix(canon, "X-Remote-") || len(canon) == len("X-Remote-"):
				v.add(hp, "header names must start with X-Remote- (so that the gateway strips them from clients) and be a valid header name")
			case reservedHeaders[canon]:
				v.add(hp, "%s is one of the gateway's own headers", canon)
			case strings.TrimSpace(claim) == "":
				v.add(hp, "needs the claim whose values it carries")
			default:
				if t.Headers == nil {
					t.Headers = map[string]string{}
				}
				if _, dup := t.Headers[canon]; dup {
					v.add(hp, "%s is listed twice (header names are case-insensitive)", canon)
					continue
				}
				t.Headers[canon] = claim
			}
		}

		if t.DefaultRelayState == "" {
			t.DefaultRelayState = DefaultDefaultRelayState
		} else if _, ok := redirect.Local(t.DefaultRelayState); !ok {
			v.add(p+".default_relay_state", "%q must be a path on this site, like /documents", t.DefaultRelayState)
		}

		switch format := f.NameIDFormat; {
		case format == "":
			t.NameIDFormat = DefaultNameIDFormat
		case nameIDFormats[format] != "":
			t.NameIDFormat = nameIDFormats[format]
		case containsValue(nameIDFormats, format):
		default:
			v.add(p+".nameid_format", "%q is not one of email, unspecified, persistent, transient or their URIs", format)
		}
		out = append(out, t)
	}
	return out
}

// reservedHeaders are the identity headers the gateway itself sets.
var reservedHeaders = map[string]bool{
	"X-Remote-User": true, "X-Remote-Email": true, "X-Remote-Name": true,
	"X-Remote-Groups": true, "X-Remote-Tenant": true, "X-Remote-Groups-Overage": true,
}

// validHeaderName reports whether s is an HTTP token without '_', which
// some servers drop or treat as '-'.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// metadataURL accepts https, and http only for loopback hosts: whoever can
// change the metadata in transit decides who can log in.
func (v *validator) metadataURL(path, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		// Not echoed: its query may carry a token, and this ends up in
		// logs.
		v.add(path, "must be an absolute https URL, like Entra's App Federation Metadata Url")
		return nil
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		v.add(path, "must use https: metadata fetched over plain http can be replaced in transit")
		return nil
	}
	return u
}

func containsValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

var hostnamePattern = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

func validHostname(s string) bool {
	return len(s) <= 253 && hostnamePattern.MatchString(s)
}
